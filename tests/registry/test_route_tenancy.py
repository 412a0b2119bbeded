"""Every operation of the API against the tenancy contract of `tests.api_contract`: team acme
owns a private model, version, dataset, suite, run, hold, waivers, upload and training run
(`tests.registry.tenancy_world`); bob of team beta tries each route on them. A route added
without a case or an exemption fails `test_every_operation_is_covered_or_exempted`."""

import json
from datetime import timedelta
from typing import Any

import pytest
from django.urls import path
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from config import urls as config_urls
from lineage.redaction import hidden_relatives_redacted
from tests.api_contract import (
    CREATE,
    LIST,
    READ,
    WRITE,
    Case,
    RouteContract,
    api_operations,
    stale_entries,
    unclassified_operations,
)
from tests.registry import tenancy_world
from tests.registry.tenancy_world import MARK, World

pytestmark = pytest.mark.django_db

world = tenancy_world.world  # the fixture, shared with this module


def by_pk(attribute: str) -> Any:
    return lambda w: [{"pk": getattr(w, attribute).pk}]


def version_refs(w: World, **extra) -> list[dict]:
    """The version by id and by MODEL@VERSION: two lookups, both confined."""
    return [{"pk": w.version.pk, **extra}, {"pk": str(w.version), **extra}]


def in_days(days: int) -> str:
    return (timezone.now() + timedelta(days=days)).isoformat()


PARENT = lambda w: {"parents": [{"version": str(w.base), "relation": "finetune"}]}  # noqa: E731
RUN = lambda w: {"method": "full_finetune", "hyperparameters": {"learning_rate": 0.01}}  # noqa: E731

CASES: dict[str, Case] = {
    # Lists: the private object is absent for bob, present for its owner.
    "GET team-list": Case(LIST, query=lambda w: {"search": "acme"}),
    "GET model-list": Case(LIST),
    "GET version-list": Case(LIST),
    "GET dataset-list": Case(LIST),
    "GET dataset-version-list": Case(LIST),
    "GET artefact-upload-list": Case(LIST),
    "GET hold-list": Case(LIST),
    "GET evaluation-suite-list": Case(LIST),
    "GET evaluation-run-list": Case(LIST),
    "GET licence-waiver-list": Case(LIST),
    # Details and nested reads.
    "GET team-detail": Case(READ, lambda w: [{"pk": w.acme.pk}]),
    "GET model-detail": Case(READ, by_pk("model")),
    "GET version-detail": Case(READ, version_refs),
    "GET version-approvals": Case(READ, version_refs),
    "GET version-compliance": Case(READ, version_refs),
    "GET version-decisions": Case(READ, version_refs),
    "GET version-gate": Case(READ, version_refs, query=lambda w: {"stage": "staging"}),
    "GET version-waivers": Case(READ, version_refs),
    "GET version-lineage": Case(READ, version_refs),
    "GET version-ancestors": Case(READ, version_refs),
    "GET version-descendants": Case(READ, version_refs),
    "GET version-roots": Case(READ, version_refs),
    "GET version-path": Case(READ, version_refs, query=lambda w: {"to": w.base.pk}),
    "GET version-parents": Case(READ, version_refs),
    "GET version-training-run": Case(READ, version_refs),
    "GET version-holds": Case(READ, version_refs),
    "GET version-licence-check": Case(READ, version_refs),
    "GET version-obligations": Case(READ, version_refs),
    "GET version-export-spdx-2.3": Case(READ, version_refs),
    "GET version-export-spdx-3.0": Case(READ, version_refs),
    "GET version-export-model-card": Case(READ, version_refs),
    "GET dataset-detail": Case(READ, by_pk("dataset")),
    "GET dataset-version-detail": Case(READ, by_pk("dataset_version")),
    "GET dataset-version-trained-models": Case(READ, by_pk("dataset_version")),
    "GET artefact-upload-detail": Case(READ, by_pk("upload")),
    "GET hold-detail": Case(READ, by_pk("hold")),
    "GET evaluation-suite-detail": Case(READ, by_pk("suite")),
    "GET evaluation-run-detail": Case(READ, by_pk("run")),
    "GET licence-waiver-detail": Case(READ, by_pk("licence_waiver")),
    "GET version-training-data": Case(READ, version_refs),
    "GET version-proposals": Case(READ, version_refs),
    "GET dataset-version-proposals": Case(READ, by_pk("dataset_version")),
    "GET proposal-list": Case(LIST),
    "GET proposal-detail": Case(READ, by_pk("proposal")),
    "GET artefact-inspection-detail": Case(READ, by_pk("inspection")),
    # Writes on the private object: 404 for bob; the owner's bodies try the server-owned fields.
    "PATCH team-detail": Case(
        WRITE,
        lambda w: [{"pk": w.acme.pk}],
        body=lambda w: {"name": "x"},
        owner_body=lambda w: {},
        owner="carol",
    ),
    "PATCH model-detail": Case(
        WRITE, by_pk("model"), body=lambda w: {"description": "x"}, owner_body=lambda w: {}
    ),
    "PATCH version-detail": Case(
        WRITE, version_refs, body=lambda w: {"description": "x"}, owner_body=lambda w: {}
    ),
    "PATCH dataset-detail": Case(
        WRITE, by_pk("dataset"), body=lambda w: {"description": "x"}, owner_body=lambda w: {}
    ),
    "PATCH dataset-version-detail": Case(
        WRITE,
        by_pk("dataset_version"),
        body=lambda w: {"known_biases": "x"},
        owner_body=lambda w: {},
    ),
    "PATCH evaluation-suite-detail": Case(
        WRITE, by_pk("suite"), body=lambda w: {"description": "x"}, owner_body=lambda w: {}
    ),
    "POST version-approvals": Case(
        WRITE,
        version_refs,
        body=lambda w: {"stage": "staging"},
        owner_body=lambda w: {"stage": "production"},
        owner="carol",
    ),
    "POST version-waivers": Case(
        WRITE,
        version_refs,
        body=lambda w: {"check": "metadata", "reason": "x"},
        owner_body=lambda w: {"check": "metadata", "reason": "x", "expires_at": in_days(30)},
        owner="carol",
    ),
    "POST version-promote": Case(
        WRITE,
        version_refs,
        body=lambda w: {"stage": "staging"},
        owner_body=lambda w: {"stage": "staging"},
    ),
    "POST version-parents": Case(WRITE, version_refs, body=PARENT, owner_body=PARENT),
    "PATCH version-parent-edge": Case(
        WRITE,
        lambda w: [{"pk": w.version.pk, "edge_id": w.edge.pk}],
        body=lambda w: {"relation": "adapter", "reason": "x"},
        owner_body=lambda w: {"relation": "adapter", "reason": "x"},
    ),
    "POST version-training-run": Case(WRITE, version_refs, body=RUN, owner_body=RUN),
    "POST version-evaluations": Case(
        WRITE, version_refs, body=lambda w: {}, owner_body=lambda w: {}
    ),
    "POST hold-lift": Case(
        WRITE,
        by_pk("hold"),
        body=lambda w: {"reason": "x"},
        owner_body=lambda w: {"reason": "x"},
        owner="carol",
    ),
    # These take no body, so there is no field to try on them.
    "POST evaluation-run-cancel": Case(WRITE, by_pk("run")),
    "POST licence-waiver-revoke": Case(WRITE, by_pk("licence_waiver"), owner="carol"),
    "POST proposal-accept": Case(
        WRITE,
        by_pk("proposal"),
        body=lambda w: {"comment": "x"},
        owner_body=lambda w: {"comment": "x"},
        owner="carol",
    ),
    "POST proposal-reject": Case(
        WRITE,
        by_pk("proposal"),
        body=lambda w: {"comment": "x"},
        owner_body=lambda w: {"comment": "x"},
        owner="carol",
    ),
    # Creations naming acme's objects.
    "POST team-list": Case(
        CREATE,
        body=lambda w: {"slug": "acme", "name": "x"},
        owner_body=lambda w: {},
        owner="carol",
    ),
    "POST model-list": Case(
        CREATE,
        body=lambda w: {"name": f"beta/{MARK}-squat", "kind": "derived", "team": "acme"},
        owner_body=lambda w: {"name": "acme/new", "kind": "derived", "team": "acme"},
    ),
    "POST version-list": Case(
        CREATE,
        body=lambda w: {"model": w.model.name, "version": "v9", "artefact_digest": "c" * 64},
        owner_body=lambda w: {"model": w.model.name, "version": "v9", "artefact_digest": "c" * 64},
    ),
    "POST dataset-list": Case(
        CREATE,
        body=lambda w: {"name": "beta/d", "team": "acme"},
        owner_body=lambda w: {"name": "acme/new-data", "team": "acme"},
    ),
    "POST dataset-version-list": Case(
        CREATE,
        body=lambda w: {
            "dataset": w.dataset.name,
            "version": "v9",
            "sha256": "c" * 64,
            "size_bytes": 1,
        },
        owner_body=lambda w: {
            "dataset": w.dataset.name,
            "version": "v9",
            "sha256": "c" * 64,
            "size_bytes": 1,
        },
    ),
    "POST evaluation-suite-list": Case(
        CREATE,
        body=lambda w: {
            "name": "beta-steal",
            "team": "beta",
            "dataset_version": w.dataset_version.pk,
            "label_column": "label",
            "input_column": "text",
        },
        owner_body=lambda w: {
            "name": "acme-2",
            "team": "acme",
            "dataset_version": w.dataset_version.pk,
            "label_column": "label",
            "input_column": "text",
        },
    ),
    "POST evaluation-run-list": Case(
        CREATE,
        body=lambda w: {"version": str(w.version), "suite": w.suite.name},
        owner_body=lambda w: {"version": str(w.version), "suite": w.suite.name},
    ),
    "POST hold-list": Case(
        CREATE,
        body=lambda w: {"version": str(w.version), "reason": "x"},
        owner_body=lambda w: {"version": str(w.version), "reason": "x"},
    ),
    "POST licence-waiver-list": Case(
        CREATE,
        body=lambda w: {
            "version": str(w.version),
            "rule": "no-copyleft",
            "reason": "x",
            "approver": "carol",
            "expires_at": None,
        },
        owner_body=lambda w: {
            "version": str(w.version),
            "rule": "no-copyleft",
            "reason": "x",
            "approver": "carol",
            "expires_at": in_days(30),
        },
        owner="carol",
    ),
    "POST registration-create": Case(
        CREATE,
        body=lambda w: {
            "model": f"beta/{MARK}-copy",
            "version": "v1",
            "artefact_upload": str(w.upload.pk),
            "parents": [{"version": str(w.version), "relation": "finetune"}],
            "create_model": {"team": "beta"},
        },
        owner_body=lambda w: {
            "model": w.model.name,
            "version": "v9",
            "artefact_digest": "c" * 64,
        },
        # The answer is the registered version: what `POST versions/` refuses, this does too.
        server_owned=(
            "hub_repo_id",
            "hub_revision",
            "artefact_uri",
            "artefact_size",
            "parameter_count",
            "stage",
            "registered_by",
        ),
    ),
    "POST artefact-inspect": Case(CREATE, body=lambda w: {"path": f"teams/acme/{MARK}-weights"}),
    "POST hub-import": Case(
        CREATE,
        body=lambda w: {
            "repo_id": "acme/x",
            "snapshot_dir": f"teams/acme/{MARK}-weights",
            "team": "beta",
        },
    ),
}

EXEMPT: dict[str, str] = {
    "GET me": "the caller's own identity; names nobody else",
    "GET api-root": "DRF's index of route names; no data",
    "GET schema": "the OpenAPI document; no data",
    "GET api-docs": "the Swagger UI page; no data",
    "GET stage-policy-list": "stage policies are organisation-wide, edited by compliance",
    "GET stage-policy-detail": "stage policies are organisation-wide, edited by compliance",
    "GET licence-list": "the licence catalogue (SPDX and curated refs) is shared by every team",
    "GET licence-detail": "the licence catalogue is shared by every team",
    "GET hub-licence-list": "the Hub licence id mapping is shared by every team",
    "GET hub-licence-detail": "the Hub licence id mapping is shared by every team",
    "GET licence-policy": "the licence policy is organisation-wide",
    "POST artefact-upload-list": "creates the caller's own upload; names no existing object",
}


def test_every_operation_is_covered_or_exempted():
    """A route (or a method of one) added to the URL conf fails here until it has a case."""
    operations = api_operations()
    assert len(operations) > 60
    assert unclassified_operations(CASES, EXEMPT) == []
    assert stale_entries(CASES, EXEMPT) == []


@pytest.fixture
def contract(world, api_for):
    def make(key: str) -> RouteContract:
        op = next(op for op in api_operations() if op.key == key)
        return RouteContract(op, CASES[key], world, api_for, world.secrets)

    return make


@pytest.mark.parametrize("key", sorted(CASES))
def test_anonymous_is_refused(contract, key):
    contract(key).check_anonymous()


@pytest.mark.parametrize("key", sorted(CASES))
def test_another_team_cannot_reach_the_object(contract, key):
    contract(key).check_other_team()


SCHEMA: dict = {}


@pytest.mark.parametrize("key", sorted(k for k, case in CASES.items() if case.owner_body))
def test_server_owned_fields_are_refused(contract, key):
    if not SCHEMA:
        SCHEMA.update(SchemaGenerator().get_schema(request=None, public=True))
    tried = contract(key).check_server_owned(SCHEMA)
    assert tried, f"{key}: no server-owned field to try"


# Leaks this contract found that are not fixed yet: each fails today and is expected to
# (strict: once fixed, the entry must go). See docs/security.md.
KNOWN_LEAKS: dict[str, str] = {}


def with_known_leaks(keys: list[str]) -> list:
    return [
        pytest.param(
            key,
            marks=pytest.mark.xfail(strict=True, reason=KNOWN_LEAKS[key]),
        )
        if key in KNOWN_LEAKS
        else key
        for key in keys
    ]


SHARED_READS = sorted(
    k for k, case in CASES.items() if case.kind == READ and case.kwargs is version_refs
)


@pytest.mark.parametrize("key", with_known_leaks(SHARED_READS))
def test_a_shared_child_shows_nothing_of_its_private_origins(world, api_for, key):
    """acme shares a version derived from its private one and trained on its private data:
    every nested read of it answers bob without the parent's or the data's names and digests
    (invisible relatives are counted placeholders)."""
    op = next(op for op in api_operations() if op.key == key)
    case = CASES[key]
    shared = Case(case.kind, lambda w: [{"pk": w.child.pk}], query=case.query)
    contract = RouteContract(op, shared, world, api_for, world.secrets)
    ((url, echoed),) = contract.urls()
    response = contract.call(world.bob, url)
    assert response.status_code in (200, 404), (key, response.content[:400])
    contract.assert_no_secret(response, echoed | {str(world.child)})


def test_the_fields_named_by_the_issue_are_among_those_refused(contract):
    """Import squatting: hub repo and revision, artefact URI and size, parameter counts."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for key in ("POST version-list", "PATCH version-detail"):
        tried = contract(key).check_server_owned(schema)
        assert {
            "hub_repo_id",
            "hub_revision",
            "artefact_uri",
            "artefact_size",
            "parameter_count",
            "stage",
        } <= set(tried)


def test_anonymous_is_refused_on_exempt_routes(api_for):
    api = api_for(None)
    for url in (
        "/api/v1/me/",
        "/api/v1/stage-policies/",
        "/api/v1/licences/",
        "/api/v1/hub-licences/",
        "/api/v1/licence-policy/",
    ):
        assert api.get(url).status_code == 401, url
    assert api.post("/api/v1/artefacts/uploads/", {}).status_code == 401


def _unclassified_view(request):
    raise AssertionError("never called")


# The URL conf of `test_a_route_without_a_case_fails_the_coverage_test`: the project's, and one
# route more that nobody classified.
urlpatterns = [
    *config_urls.urlpatterns,
    path("api/v1/newcomers/", _unclassified_view, name="newcomer-list"),
]


def test_a_route_without_a_case_fails_the_coverage_test(settings):
    settings.ROOT_URLCONF = __name__
    assert unclassified_operations(CASES, EXEMPT) == ["GET newcomer-list"]


@pytest.mark.parametrize("route", ["gate/?stage=staging", "compliance/"])
def test_gate_answers_hide_only_what_the_reader_cannot_see(world, api_for, route):
    """The gate judges the whole family for everyone; bob reads the shared child's failing
    lineage check with its private ancestor counted, not named, while acme and compliance read
    the hold's reason and who placed it."""
    url = f"/api/v1/versions/{world.child.pk}/{route}"
    redacted = json.dumps(api_for(world.bob).get(url).json())
    assert f"model version #{world.version.pk} (not visible to you)" in redacted
    assert f"hold #{world.hold.pk}" in redacted
    assert MARK not in redacted and world.version.artefact_digest[:16] not in redacted
    for reader in (world.alice, world.carol):
        full = json.dumps(api_for(reader).get(url).json())
        assert f"{MARK} hold reason" in full and str(world.version) in full


def test_redaction_names_only_whole_references(world):
    """A hidden ancestor's name is replaced where it stands whole, never inside a longer name."""
    ref = str(world.version)
    data = {"reasons": [f"{ref}0 is another version", f"derived from {ref}."]}
    redacted = hidden_relatives_redacted(world.bob, world.child, data)
    assert redacted["reasons"] == [
        f"{ref}0 is another version",
        f"derived from model version #{world.version.pk} (not visible to you).",
    ]
