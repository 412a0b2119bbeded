"""Parents and training data are gate evidence: an engineer's change to the lineage of a version
whose evidence is protected (or that left development) is checked as the change would be, then
recorded as a proposal (202) and nothing of the lineage changes; compliance staff outside the
owning team accept it (the change is made, voiding the approvals it touches) or reject it."""

from dataclasses import dataclass
from typing import Any

import pytest

from lineage import services as lineage_services
from lineage.models import LineageEdge, TrainingRun
from lineage.services import ParentSpec
from registry import gates, services
from registry.models import (
    AuditEntry,
    EventDelivery,
    EvidenceProposal,
    ModelVersion,
    StagePolicy,
    WebhookEndpoint,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def policies(db):
    for stage in ("staging", "production"):
        StagePolicy.objects.update_or_create(
            stage=stage,
            risk_tier="high",
            defaults={"required_checks": ["metadata", "approvals"], "approvals_required": 1},
        )


@pytest.fixture
def reviewers(make_user):
    return make_user("carol", compliance=True), make_user("dan", compliance=True)


@pytest.fixture
def hook(db):
    return WebhookEndpoint.objects.create(name="ops", url="http://127.0.0.1:9/hook", secret="s")


@pytest.fixture
def base(make_version):
    return make_version(licence_declared="Apache-2.0")


@pytest.fixture
def other_base(make_version):
    return make_version(licence_declared="CC-BY-NC-4.0")


@pytest.fixture
def data(make_dataset_version):
    return make_dataset_version("acme/tickets", licence_declared="CC-BY-NC-4.0")


def gate(version):
    version = ModelVersion.objects.select_related("model__team").get(pk=version.pk)
    return gates.gate_evaluate(version=version, stage="production").to_dict()


def approvals_row(version):
    return next(row for row in gate(version)["checks"] if row["check"] == "approvals")


def lineage_of(version):
    """Everything a lineage change could touch: parent edges and the training run."""
    edges = list(
        LineageEdge.objects.filter(child=version)
        .order_by("pk")
        .values_list("parent_id", "relation", "relation_inferred")
    )
    run = TrainingRun.objects.filter(version=version).values_list("method", flat=True).first()
    return edges, run


@dataclass
class Change:
    """One of the three lineage changes: how to ask for it over the API, a bad request the
    direct write refuses too, a lineage change compliance makes meanwhile (making the proposal
    stale), what the gate says once it is made, and how to see it was."""

    name: str
    with_parent: bool  # the approved version already has `base` as its (finetune) parent
    request: Any
    bad_request: Any
    meanwhile: Any
    gate_says: Any
    made: Any


def _edge(version):
    return LineageEdge.objects.get(child=version)


CHANGES = [
    Change(
        name="parents_add",
        with_parent=False,
        request=lambda api, v, f: api.post(
            f"/api/v1/versions/{v.pk}/parents/",
            {"parents": [{"version": str(f["base"]), "relation": "finetune"}]},
            format="json",
        ),
        bad_request=lambda api, v, f: api.post(
            f"/api/v1/versions/{v.pk}/parents/",
            {"parents": [{"version": "acme/nothing@v9", "relation": "finetune"}]},
            format="json",
        ),
        meanwhile=lambda officer, v, f: lineage_services.training_run_record(
            actor=officer,
            version=v,
            method="full_finetune",
            hyperparameters={"learning_rate": 1e-4},
        ),
        gate_says=lambda f: f"lineage[parents][{f['base']}]: added ('finetune')",
        made=lambda v, f: lineage_of(v)[0] == [(f["base"].pk, "finetune", False)],
    ),
    Change(
        name="edge_correct",
        with_parent=True,
        request=lambda api, v, f: api.patch(
            f"/api/v1/versions/{v.pk}/parents/{_edge(v).pk}/",
            {"parent": str(f["other_base"]), "reason": "It was tuned from the NC model"},
            format="json",
        ),
        # A merge needs two parents: refused as the correction itself would be.
        bad_request=lambda api, v, f: api.patch(
            f"/api/v1/versions/{v.pk}/parents/{_edge(v).pk}/",
            {"relation": "merge", "reason": "merged"},
            format="json",
        ),
        meanwhile=lambda officer, v, f: lineage_services.edge_correct(
            actor=officer, edge=_edge(v), relation="continued_pretraining", reason="checked"
        ),
        gate_says=lambda f: f"lineage[parents][{f['other_base']}]: added ('finetune')",
        made=lambda v, f: _edge(v).parent_id == f["other_base"].pk,
    ),
    Change(
        name="training_run",
        with_parent=False,
        request=lambda api, v, f: api.post(
            f"/api/v1/versions/{v.pk}/training-run/",
            {
                "method": "full_finetune",
                "hyperparameters": {"learning_rate": 1e-5, "epochs": 2},
                "datasets": [{"dataset_version": f["data"].pk, "role": "train"}],
                "started_at": "2026-11-01T09:00:00Z",
                "compute": {"gpu_hours": 2.5},
            },
            format="json",
        ),
        bad_request=lambda api, v, f: api.post(
            f"/api/v1/versions/{v.pk}/training-run/",
            {"method": "full_finetune", "hyperparameters": {"learning_rate": "fast"}},
            format="json",
        ),
        meanwhile=lambda officer, v, f: lineage_services.edges_create(
            actor=officer, child=v, parents=[ParentSpec(f["base"], "finetune")]
        ),
        gate_says=lambda f: (
            f"lineage[training_data][{f['data']}][declared]: added ('CC-BY-NC-4.0')"
        ),
        made=lambda v, f: TrainingRun.objects.filter(
            version=v, datasets__dataset_version=f["data"], gpu_hours=2.5, run_by__username="alice"
        ).exists(),
    ),
]


@pytest.fixture
def fixtures(base, other_base, data):
    return {"base": base, "other_base": other_base, "data": data}


@pytest.fixture
def approve(make_version, reviewers, policies, engineer, base):
    """`approve(change)`: a high-risk version with the metadata production needs and one
    approval (by carol), with `base` as its parent first where the change needs an edge."""

    def make(change: Change) -> ModelVersion:
        carol, _ = reviewers
        version = make_version(
            risk_tier="high", intended_use="Routing", known_limitations="English only"
        )
        if change.with_parent:
            lineage_services.edges_create(
                actor=engineer, child=version, parents=[ParentSpec(base, "finetune")]
            )
        services.approval_record(actor=carol, version=version, stage="production")
        return version

    return make


def by_name(change: Change) -> str:
    return change.name


@pytest.mark.parametrize("change", CHANGES, ids=by_name)
def test_an_engineers_change_is_proposed_and_an_outside_officer_makes_it(
    change,
    approve,
    fixtures,
    api_for,
    engineer,
    reviewers,
    hook,
    django_capture_on_commit_callbacks,
):
    _, dan = reviewers
    version = approve(change)
    assert approvals_row(version)["passed"]
    before = lineage_of(version)
    response = change.request(api_for(engineer), version, fixtures)
    assert response.status_code == 202, response.content
    body = response.json()
    proposal = body["proposal"]
    assert f"proposal #{proposal['id']}" in body["message"]
    assert (proposal["kind"], proposal["status"], proposal["proposed_by"]) == (
        change.name,
        "pending",
        "alice",
    )
    assert proposal["target"] == str(version)
    assert "has a compliance approval" in proposal["protected_because"]
    assert proposal["weakening"]
    # Nothing of the lineage changed, and the approval still counts.
    assert lineage_of(version) == before
    assert approvals_row(version)["passed"]
    assert AuditEntry.objects.filter(action="evidence.propose", object_id=str(version.pk)).exists()
    assert EventDelivery.objects.filter(endpoint=hook, event="evidence.proposed").count() == 1

    with django_capture_on_commit_callbacks(execute=True):
        accepted = api_for(dan).post(
            f"/api/v1/proposals/{proposal['id']}/accept/", {"comment": "checked the run"}
        )
    assert accepted.status_code == 200, accepted.content
    assert (accepted.json()["status"], accepted.json()["concluded_by"]) == ("accepted", "dan")
    assert change.made(version, fixtures)
    row = approvals_row(version)
    assert not row["passed"]
    assert any(change.gate_says(fixtures) in reason for reason in row["reasons"]), row["reasons"]
    assert EventDelivery.objects.filter(event="evidence.proposal_accepted").count() == 1
    version.refresh_from_db()
    assert version.compliance.computed_at is not None  # rechecked, as a field proposal is


@pytest.mark.parametrize("change", CHANGES, ids=by_name)
def test_a_stale_proposal_cannot_be_accepted(
    change, approve, fixtures, api_for, engineer, reviewers
):
    carol, dan = reviewers
    version = approve(change)
    proposal_id = change.request(api_for(engineer), version, fixtures).json()["proposal"]["id"]
    change.meanwhile(carol, version, fixtures)
    after_meanwhile = lineage_of(version)
    response = api_for(dan).post(f"/api/v1/proposals/{proposal_id}/accept/", {})
    assert response.status_code == 409, response.content
    assert response.json()["error"]["code"] == "proposal_stale"
    assert lineage_of(version) == after_meanwhile
    assert EvidenceProposal.objects.get(pk=proposal_id).status == "pending"


@pytest.mark.parametrize("change", CHANGES, ids=by_name)
def test_the_owning_teams_compliance_cannot_conclude_and_rejecting_changes_nothing(
    change, approve, fixtures, api_for, make_user, engineer, team, reviewers
):
    _, dan = reviewers
    version = approve(change)
    before, answer = lineage_of(version), gate(version)
    proposal_id = change.request(api_for(engineer), version, fixtures).json()["proposal"]["id"]
    insider = make_user("erin", teams=[team], compliance=True)
    refused = api_for(insider).post(f"/api/v1/proposals/{proposal_id}/accept/", {})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "duty_conflict"
    rejected = api_for(dan).post(
        f"/api/v1/proposals/{proposal_id}/reject/", {"comment": "The card says otherwise"}
    )
    assert rejected.status_code == 200
    assert rejected.json()["status"] == "rejected"
    assert lineage_of(version) == before
    assert gate(version) == answer


@pytest.mark.parametrize("change", CHANGES, ids=by_name)
def test_bad_input_is_refused_as_the_change_would_be_and_nothing_is_recorded(
    change, approve, fixtures, api_for, engineer, outsider
):
    version = approve(change)
    before = lineage_of(version)
    response = change.bad_request(api_for(engineer), version, fixtures)
    assert response.status_code == 400, response.content
    # Another team's engineer gets what tenancy says, as before.
    assert change.request(api_for(outsider), version, fixtures).status_code == 404
    assert not EvidenceProposal.objects.exists()
    assert lineage_of(version) == before


@pytest.mark.parametrize("change", CHANGES, ids=by_name)
def test_an_unprotected_development_version_is_changed_directly(
    change, make_version, fixtures, api_for, engineer, base
):
    version = make_version()
    if change.with_parent:
        lineage_services.edges_create(
            actor=engineer, child=version, parents=[ParentSpec(base, "finetune")]
        )
    response = change.request(api_for(engineer), version, fixtures)
    expected = 200 if change.name == "edge_correct" else 201
    assert response.status_code == expected, response.content
    assert change.made(version, fixtures)
    assert not EvidenceProposal.objects.exists()


def test_a_version_past_development_takes_proposals_even_without_an_approval(
    api_for, engineer, make_version, base
):
    StagePolicy.objects.update_or_create(
        stage="staging", risk_tier="minimal", defaults={"required_checks": [], "allowed": True}
    )
    version = make_version(risk_tier="minimal")
    services.version_promote(actor=engineer, version=version, stage="staging")
    response = api_for(engineer).post(
        f"/api/v1/versions/{version.pk}/parents/",
        {"parents": [{"version": str(base), "relation": "quantized"}], "reason": "GGUF export"},
        format="json",
    )
    assert response.status_code == 202, response.content
    proposal = response.json()["proposal"]
    assert "is in staging" in proposal["protected_because"]
    assert proposal["changes"] == {"parents": [{"version": base.pk, "relation": "quantized"}]}
    assert proposal["before"] == {"parents": [], "training_run": None}
    assert proposal["reason"] == "GGUF export"
    assert proposal["weakening"] == {
        f"parents[{base}]": f"adding parent {base} (quantized, licence Apache-2.0) changes the "
        f"licence obligations {version} inherits"
    }
    assert not LineageEdge.objects.filter(child=version).exists()


def test_the_admin_shows_a_lineage_proposal_readably(
    client, approve, fixtures, api_for, engineer, make_user
):
    change = next(change for change in CHANGES if change.name == "training_run")
    version = approve(change)
    proposal_id = change.request(api_for(engineer), version, fixtures).json()["proposal"]["id"]
    officer = make_user("olivia", compliance=True, is_staff=True)
    from django.contrib.auth.models import Permission

    officer.user_permissions.add(Permission.objects.get(codename="view_evidenceproposal"))
    client.force_login(officer)
    listing = client.get("/admin/registry/evidenceproposal/").content.decode()
    assert "Training run recorded" in listing
    assert f"recording {fixtures['data']} (licence CC-BY-NC-4.0) as train data" in listing
    page = client.get(f"/admin/registry/evidenceproposal/{proposal_id}/change/").content.decode()
    assert "Proposed (training run recorded)" in page
    assert "full_finetune" in page and "Lineage when proposed" in page
