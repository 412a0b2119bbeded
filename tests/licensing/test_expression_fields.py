"""Licence expressions on versions and datasets: validated and normalised on every write path
(API, services used by admin and import), refused with the unknown symbols named."""

import pytest

from licensing.catalogue import resolve_hub_licence
from registry import services as registry_services
from registry.errors import InvalidInput
from registry.models import ModelVersion
from registry.plugins import HubLicenceResolution, plugins
from tests.conftest import digest


def version_payload(model, **extra):
    return {"model": model.name, "version": "v1", "artefact_digest": digest("x"), **extra}


def test_api_refuses_unknown_symbols_naming_field_and_symbols(api_for, engineer, make_model):
    model = make_model("acme/support-intent")
    response = api_for(engineer).post(
        "/api/v1/versions/",
        version_payload(model, licence_declared="Apache-2.0 OR Foo-Licence AND LicenseRef-Acme"),
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("licence_declared: Unknown symbol(s) ")
    [message] = error["fields"]["licence_declared"]
    assert "Foo-Licence" in message and "LicenseRef-Acme" in message
    assert "ask compliance to add it" in message
    assert not ModelVersion.objects.exists()


def test_api_normalises_expressions_to_canonical_form(api_for, engineer, make_model):
    model = make_model("acme/support-intent")
    response = api_for(engineer).post(
        "/api/v1/versions/",
        version_payload(model, licence_declared="apache-2.0 or (mit and gpl-2.0)"),
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["licence_declared"] == "Apache-2.0 OR (MIT AND GPL-2.0-only)"


def test_malformed_expression_is_refused(api_for, engineer, make_model):
    model = make_model("acme/support-intent")
    response = api_for(engineer).post(
        "/api/v1/versions/", version_payload(model, licence_declared="MIT OR"), format="json"
    )
    assert response.status_code == 400
    assert "licence_declared" in response.json()["error"]["fields"]


def test_patch_of_concluded_licence_is_validated(
    api_for, compliance_user, make_version, licence_tables
):
    version = make_version()
    url = f"/api/v1/versions/{version.pk}/"
    bad = api_for(compliance_user).patch(url, {"licence_concluded": "Apache2"}, format="json")
    assert bad.status_code == 400
    [message] = bad.json()["error"]["fields"]["licence_concluded"]
    assert "'Apache2'" in message
    good = api_for(compliance_user).patch(url, {"licence_concluded": "cc-by-4.0"}, format="json")
    assert good.status_code == 200
    assert good.json()["licence_concluded"] == "CC-BY-4.0"


def test_dataset_versions_are_validated_too(api_for, engineer, team, licence_tables):
    api = api_for(engineer)
    dataset = api.post("/api/v1/datasets/", {"name": "acme/reviews", "team": team.slug})
    assert dataset.status_code == 201
    payload = {
        "dataset": "acme/reviews",
        "version": "v1",
        "sha256": digest("d"),
        "size_bytes": 10,
        "licence_declared": "CC-BY-NC-5.0",
    }
    refused = api.post("/api/v1/dataset-versions/", payload, format="json")
    assert refused.status_code == 400
    assert "CC-BY-NC-5.0" in refused.json()["error"]["fields"]["licence_declared"][0]
    created = api.post(
        "/api/v1/dataset-versions/", payload | {"licence_declared": "cc-by-nc-4.0"}, format="json"
    )
    assert created.json()["licence_declared"] == "CC-BY-NC-4.0"
    patched = api.patch(
        f"/api/v1/dataset-versions/{created.json()['id']}/",
        {"licence_declared": "NotALicence"},
        format="json",
    )
    assert patched.status_code == 400


def test_services_validate_for_every_caller(make_version, compliance_user, licence_tables):
    with pytest.raises(InvalidInput) as excinfo:
        make_version(licence_declared="LicenseRef-Made-Up")
    assert excinfo.value.fields["licence_declared"][0].startswith(
        "Unknown symbol(s) LicenseRef-Made-Up"
    )
    version = make_version(licence_declared="LicenseRef-Llama-3.1")
    with pytest.raises(InvalidInput):
        registry_services.version_update(
            actor=compliance_user, version=version, changes={"licence_concluded": "GPL-9.0"}
        )
    # Empty means "not declared": allowed (the policy's missing-licence rule reports it).
    assert make_version(licence_declared="").licence_declared == ""


def test_admin_change_form_cannot_store_an_invalid_licence(
    client, make_user, make_version, team, licence_tables
):
    admin_user = make_user("root", teams=[team], compliance=True, is_staff=True, is_superuser=True)
    version = make_version(licence_declared="MIT")
    client.force_login(admin_user)
    url = f"/admin/registry/modelversion/{version.pk}/change/"
    form = client.get(url).context["adminform"].form
    data = {
        name: ("" if value is None else value)
        for name, value in form.initial.items()
        if name in form.fields
    }
    data |= {"licence_declared": "MIT AND Bogus-1.0", "licence_concluded": ""}
    refused = client.post(url, data)
    # The service's refusal comes back on the form, next to the field.
    assert refused.status_code == 200
    assert "Bogus-1.0" in " ".join(refused.context["adminform"].form.errors["licence_declared"])
    version.refresh_from_db()
    assert version.licence_declared == "MIT"
    accepted = client.post(url, data | {"licence_declared": "mit or apache-2.0"})
    assert accepted.status_code == 302
    version.refresh_from_db()
    assert version.licence_declared == "MIT OR Apache-2.0"


def test_hub_import_uses_the_catalogue_resolver(licence_tables):
    assert plugins.contributions(HubLicenceResolution) == [
        HubLicenceResolution(resolve_hub_licence)
    ]
    resolve = plugins.contributions(HubLicenceResolution)[0].resolve
    mapped = resolve("llama3.1", license_name=None, license_link=None)
    assert mapped.expression == "LicenseRef-Llama-3.1"
    assert not mapped.review_required
    ambiguous = resolve("gpl", license_name=None, license_link=None)
    assert ambiguous.review_required and "GPL-3.0-only is assumed" in ambiguous.reason
    with pytest.raises(ValueError, match="not a Hugging Face Hub licence id"):
        resolve("made-up", license_name=None, license_link=None)
