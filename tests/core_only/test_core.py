"""The core with no other app installed (tests/settings_core_only.py): it starts, registers
and judges versions, serves its API, schema and admin, and runs only its own contributions."""

import pytest
from django.apps import apps

from registry import gates, hub
from registry.filters import VersionFilter
from registry.gates import registered_checks
from registry.plugins import (
    DashboardPanel,
    EvaluationResultsProvider,
    HubLicenceResolution,
    InvolvementProvider,
    LicenceValidator,
    VersionListFilter,
    VersionPanel,
    plugins,
)

pytestmark = pytest.mark.django_db

OTHER_APPS = ("lineage", "licensing", "evaluators", "demo")


def test_only_the_core_is_installed_and_contributes():
    assert apps.is_installed("registry")
    assert not [app for app in OTHER_APPS if apps.is_installed(app)]
    assert list(registered_checks()) == ["metadata", "approvals"]
    for kind in (
        InvolvementProvider,
        EvaluationResultsProvider,
        DashboardPanel,
        VersionPanel,
        VersionListFilter,
        LicenceValidator,
        HubLicenceResolution,
    ):
        assert plugins.contributions(kind) == []
    assert "descends_from" not in VersionFilter.base_filters


def test_the_gate_runs_the_core_checks_and_names_the_missing_ones(make_version, api_for, engineer):
    version = make_version(
        risk_tier="limited", intended_use="Routing tickets", known_limitations="English only"
    )

    evaluation = gates.gate_evaluate(version=version, stage="staging").to_dict()
    answered = api_for(engineer).get(f"/api/v1/versions/{version.pk}/gate/", {"stage": "staging"})

    assert answered.status_code == 200
    assert answered.json()["checks"] == evaluation["checks"]
    checks = {row["check"]: row for row in evaluation["checks"]}
    # The default staging policy also requires lineage_health and licence: deny by default.
    assert set(checks) == {"transition", "metadata", "approvals", "lineage_health", "licence"}
    assert checks["metadata"]["passed"] and checks["transition"]["passed"]
    for missing in ("lineage_health", "licence"):
        assert not checks[missing]["passed"]
        assert "no installed app provides it" in checks[missing]["reasons"][0]
    assert evaluation["passed"] is False


def test_licences_are_recorded_as_written_without_a_catalogue(make_version):
    assert make_version(licence_declared="mit OR Bogus-1.0").licence_declared == "mit OR Bogus-1.0"


def test_a_hub_licence_is_recorded_as_given_and_flagged_unmapped():
    card = hub.parse_card("---\nlicense: llama2\n---\n", repo_id="acme/tiny")
    mapping = hub.resolve_licence(card, repo_id="acme/tiny")
    assert (mapping.hub_id, mapping.expression, mapping.review_required) == (
        "llama2",
        "llama2",
        True,
    )
    assert "unmapped" in mapping.reason
    card = hub.parse_card("---\ntags: [text]\n---\n", repo_id="acme/tiny")
    mapping = hub.resolve_licence(card, repo_id="acme/tiny")
    assert (mapping.expression, mapping.review_required) == ("NOASSERTION", True)
    assert "missing licence evidence" in mapping.reason


def test_the_api_schema_and_admin_serve_the_core_alone(client, admin_client, make_version):
    version = make_version()

    schema = client.get("/api/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert "/api/v1/versions/" in paths
    assert not [path for path in paths if "lineage" in path or "licence" in path]
    parameters = {p["name"] for p in paths["/api/v1/versions/"]["get"]["parameters"]}
    assert "licence" in parameters and "descends_from" not in parameters

    assert admin_client.get("/admin/").status_code == 200
    page = admin_client.get(f"/admin/registry/modelversion/{version.pk}/change/")
    assert page.status_code == 200
    assert b"lineage-panel" not in page.content
