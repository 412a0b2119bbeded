"""The licence tables: seeded by migration, re-seeded by `licences_sync`, corrected by
compliance (audited, kept across syncs), and the admin pages compliance uses."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import timezone

from licensing import services
from licensing.catalogue import hub_licence_ids, load_catalogue
from licensing.models import (
    HubLicenceMapping,
    Licence,
    LicencePolicy,
    LicencePolicyRevision,
    LicenceRule,
    LicenceTerm,
)
from licensing.seeding import DEFAULT_RULES
from registry.errors import InvalidInput, PermissionRefused
from registry.models import AuditEntry


def test_migrations_seed_the_catalogue_hub_ids_and_default_policy(licence_tables):
    catalogue = load_catalogue()
    assert Licence.objects.count() == len(catalogue)
    assert LicenceTerm.objects.count() == sum(len(entry.terms) for entry in catalogue)
    assert set(HubLicenceMapping.objects.values_list("hub_id", flat=True)) == set(hub_licence_ids())
    llama = Licence.objects.get(spdx_id="LicenseRef-Llama-3.1")
    assert (llama.category, llama.review_required, llama.curated) == ("use_restricted", False, True)
    naming = llama.terms.get(type="naming_prefix")
    assert naming.value == "Llama"
    assert "distillation" in naming.carries_through
    assert llama.terms.get(type="user_threshold").value == 700_000_000
    policy = LicencePolicy.objects.get(active=True)
    assert list(policy.rules.values_list("name", flat=True)) == [r["name"] for r in DEFAULT_RULES]
    assert policy.revisions.get(revision=1).change == "default policy created"


def test_licences_sync_is_idempotent_and_keeps_compliance_corrections(
    compliance_user, licence_tables, capsys
):
    gemma = Licence.objects.get(spdx_id="LicenseRef-Gemma")
    services.licence_update(
        actor=compliance_user,
        licence=gemma,
        changes={"category": "proprietary", "review_required": True},
    )
    gemma.refresh_from_db()
    assert gemma.compliance_override and gemma.reviewed_by == compliance_user
    entry = AuditEntry.objects.filter(action="licence.update").latest("id")
    assert entry.before["category"] == "use_restricted"
    assert entry.after["category"] == "proprietary"

    # Simulate an old catalogue reading, then upgrade: the sync refreshes it.
    Licence.objects.filter(spdx_id="MIT").update(name="old name", catalogue_category="unknown")
    LicenceTerm.objects.filter(licence__spdx_id="Apache-2.0").delete()
    call_command("licences_sync")
    out = capsys.readouterr().out
    assert "0 created, 1 updated" in out
    assert "Kept compliance's category/review flag for: LicenseRef-Gemma" in out
    assert Licence.objects.get(spdx_id="MIT").name == "MIT License"
    assert LicenceTerm.objects.filter(licence__spdx_id="Apache-2.0").count() == 4
    gemma.refresh_from_db()
    assert (gemma.category, gemma.catalogue_category) == ("proprietary", "use_restricted")
    assert AuditEntry.objects.filter(action="licence_catalogue.sync").exists()

    # Setting the catalogue's reading again ends the override.
    services.licence_update(
        actor=compliance_user,
        licence=gemma,
        changes={"category": "use_restricted", "review_required": False},
    )
    gemma.refresh_from_db()
    assert not gemma.compliance_override


def test_sync_seeds_an_empty_database(db):
    LicenceRule.objects.all().delete()
    LicencePolicyRevision.objects.all().delete()
    LicencePolicy.objects.all().delete()
    LicenceTerm.objects.all().delete()
    HubLicenceMapping.objects.all().delete()
    Licence.objects.all().delete()
    report = services.licences_sync()
    assert len(report.created) == len(load_catalogue())
    assert LicencePolicy.objects.filter(active=True).exists()


def test_licence_corrections_are_checked(compliance_user, engineer, licence_tables):
    mit = Licence.objects.get(spdx_id="MIT")
    with pytest.raises(InvalidInput) as excinfo:
        services.licence_update(actor=compliance_user, licence=mit, changes={"category": "open"})
    assert "Unknown category 'open'" in excinfo.value.fields["category"][0]
    with pytest.raises(InvalidInput):
        services.licence_update(actor=compliance_user, licence=mit, changes={"name": "x"})
    with pytest.raises(PermissionRefused):
        services.licence_update(actor=engineer, licence=mit, changes={"review_required": True})


# ------------------------------------------------------------------ admin


def form_data(page) -> dict:
    """What the browser would post back: the inlines' management forms and nothing changed."""
    data = {}
    for inline in page.context["inline_admin_formsets"]:
        management = inline.formset.management_form
        data |= {management.add_prefix(name): value for name, value in management.initial.items()}
        for form in inline.formset.forms:
            data |= {
                form.add_prefix(name): value
                for name, value in form.initial.items()
                if value is not None and not isinstance(value, list | dict)
            }
    return data


@pytest.fixture
def admin_client(client, make_user, licence_tables):
    user = make_user("root", compliance=True, is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def test_admin_licence_pages_and_category_edit(admin_client):
    assert admin_client.get("/admin/licensing/licence/?category=non_commercial").status_code == 200
    licence = Licence.objects.get(spdx_id="LicenseRef-OpenRAIL")
    url = f"/admin/licensing/licence/{licence.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200
    assert b"Open RAIL family" in page.content  # a term's clause, shown read-only
    response = admin_client.post(
        url,
        form_data(page)
        | {"category": "use_restricted", "review_required": "", "notes": "Read by legal."},
    )
    assert response.status_code == 302
    licence.refresh_from_db()
    assert licence.review_required is False and licence.compliance_override
    assert AuditEntry.objects.filter(action="licence.update", object_id=str(licence.pk)).exists()
    assert admin_client.get("/admin/licensing/hublicencemapping/").status_code == 200
    assert admin_client.get("/admin/licensing/licencepolicy/").status_code == 200


def _rule_form(**overrides):
    policy = LicencePolicy.objects.get(active=True)
    return {
        "policy": policy.pk,
        "name": "gemma-legal",
        "position": 500,
        "enabled": "on",
        "condition": "licence",
        "category": "",
        "licence": Licence.objects.get(spdx_id="LicenseRef-Gemma").pk,
        "term_type": "",
        "scope": "any",
        "uses": ["commercial"],
        "severity": "warning",
        "message": "{licence} of {source} needs a legal read.",
        "how_to_fix": "Ask legal to review {licence}.",
    } | overrides


def test_admin_rule_editing_goes_through_the_services(admin_client):
    policy = LicencePolicy.objects.get(active=True)
    revision = policy.revision
    bad = admin_client.post(
        "/admin/licensing/licencerule/add/",
        _rule_form(condition="category", category="", licence=""),
    )
    assert bad.status_code == 200
    assert "a category rule needs one of" in str(bad.context["adminform"].form.errors["category"])
    bad = admin_client.post(
        "/admin/licensing/licencerule/add/", _rule_form(message="{licence} from {origin}")
    )
    assert "unknown placeholder {origin}" in str(bad.context["adminform"].form.errors)
    created = admin_client.post("/admin/licensing/licencerule/add/", _rule_form())
    assert created.status_code == 302
    rule = LicenceRule.objects.get(name="gemma-legal")
    assert rule.uses == ["commercial"]
    policy.refresh_from_db()
    assert policy.revision == revision + 1
    changed = admin_client.post(
        f"/admin/licensing/licencerule/{rule.pk}/change/", _rule_form(severity="error")
    )
    assert changed.status_code == 302
    policy.refresh_from_db()
    assert policy.revision == revision + 2
    deleted = admin_client.post(f"/admin/licensing/licencerule/{rule.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302
    assert not LicenceRule.objects.filter(name="gemma-legal").exists()
    policy.refresh_from_db()
    assert policy.revision == revision + 3
    assert AuditEntry.objects.filter(action="licence_rule.delete").exists()


def test_admin_waiver_form_shows_bad_input(admin_client, make_version, make_user):
    version = make_version()
    officer = make_user("dana", compliance=True)
    form = {
        "version": version.pk,
        "rule_name": "non-commercial-use",
        "licence_id": "",
        "reason": "",
        "approver": officer.pk,
        "expires_at": (timezone.now() + timedelta(days=5)).strftime("%Y-%m-%dT12:00"),
    }
    refused = admin_client.post("/admin/licensing/licencewaiver/add/", form)
    assert refused.status_code == 200
    assert "reason" in refused.context["adminform"].form.errors
    expired = admin_client.post(
        "/admin/licensing/licencewaiver/add/",
        form | {"reason": "Contract.", "expires_at": "2000-01-01T12:00"},
    )
    assert "in the past" in str(expired.context["adminform"].form.errors)
    granted = admin_client.post(
        "/admin/licensing/licencewaiver/add/", form | {"reason": "Contract."}
    )
    assert granted.status_code == 302
    waiver = version.licence_waivers.get()
    assert waiver.granted_by.username == "root"
    assert (
        admin_client.get(f"/admin/licensing/licencewaiver/{waiver.pk}/change/").status_code == 200
    )
    revoked = admin_client.post(
        "/admin/licensing/licencewaiver/", {"action": "revoke", "_selected_action": [waiver.pk]}
    )
    assert revoked.status_code == 302
    waiver.refresh_from_db()
    assert waiver.revoked_by.username == "root"


def test_licence_panel_renders_obligations_and_violations(minilm, derive, dataset, engineer):
    tuned = derive("acme/support-intent", minilm, datasets=[dataset("acme/r", "CC-BY-NC-4.0")])
    request = RequestFactory().get("/admin/", {"use": "commercial", "stage": "production"})
    request.user = engineer
    html = Template("{% load licensing_tags %}{% licence_panel version %}").render(
        Context({"request": request, "version": tuned})
    )
    assert "Fails" in html
    assert "non-commercial-use" in html
    assert "CC BY-NC 4.0 §2(a)(1)" in html
    assert f"/api/v1/versions/{tuned.pk}/licence-check/" in html
