"""Evidence-change proposals: an engineer's edit that could weaken protected evidence is
recorded, not applied (202); only compliance staff outside the owning team conclude it, and
accepting it voids the approvals it touches, the gate naming what changed."""

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry import gates, services
from registry.models import AuditEntry, EvidenceProposal, ModelVersion, StagePolicy

pytestmark = pytest.mark.django_db


@pytest.fixture
def policies(db):
    for tier in ("minimal", "limited", "high"):
        for stage in ("staging", "production"):
            StagePolicy.objects.update_or_create(
                stage=stage,
                risk_tier=tier,
                defaults={
                    "required_checks": ["metadata", "approvals"],
                    "approvals_required": 1 if tier == "minimal" else 2,
                },
            )


@pytest.fixture
def reviewers(make_user):
    return make_user("carol", compliance=True), make_user("dan", compliance=True)


@pytest.fixture
def approved(make_version, reviewers, policies):
    """A high-risk version with its licence concluded and one production approval."""
    carol, _ = reviewers
    version = make_version(
        risk_tier="high",
        intended_use="Routing support tickets",
        known_limitations="English only. Not for medical triage.",
    )
    services.version_update(
        actor=carol, version=version, changes={"licence_concluded": "Apache-2.0"}
    )
    services.approval_record(actor=carol, version=version, stage="production")
    return version


def gate(version, stage="production"):
    version = ModelVersion.objects.select_related("model__team").get(pk=version.pk)
    return gates.gate_evaluate(version=version, stage=stage).to_dict()


def approvals_row(version):
    return next(row for row in gate(version)["checks"] if row["check"] == "approvals")


def propose(api, version, changes, reason="Reassessed by the team"):
    return api.patch(
        f"/api/v1/versions/{version.pk}/", {**changes, "reason": reason}, format="json"
    )


def test_an_engineer_lowering_the_tier_proposes_it_and_nothing_changes(api_for, engineer, approved):
    before = gate(approved)
    response = propose(api_for(engineer), approved, {"risk_tier": "minimal"})
    assert response.status_code == 202, response.content
    body = response.json()
    proposal = body["proposal"]
    assert f"proposal #{proposal['id']}" in body["message"]
    assert "compliance officer outside the owning team must accept it" in body["message"]
    assert proposal["status"] == "pending"
    assert proposal["changes"] == {"risk_tier": "minimal"}
    assert proposal["before"] == {"risk_tier": "high"}
    assert proposal["weakening"] == {"risk_tier": "lowering the risk tier from high to minimal"}
    assert "has a compliance approval" in proposal["protected_because"]
    assert proposal["proposed_by"] == "alice"
    assert proposal["reason"] == "Reassessed by the team"
    assert proposal["target"] == str(approved)
    approved.refresh_from_db()
    assert approved.risk_tier == "high"
    assert gate(approved) == before
    audit = AuditEntry.objects.filter(action="evidence.propose").get()
    assert audit.after["changes"] == {"risk_tier": "minimal"}
    # The pending proposal shows on the version, to its team.
    listed = api_for(engineer).get(f"/api/v1/versions/{approved.pk}/proposals/").json()
    assert [row["id"] for row in listed] == [proposal["id"]]


def test_a_whole_edit_becomes_the_proposal(api_for, engineer, approved):
    """A PATCH mixing a weakening change with a harmless one applies neither until concluded."""
    response = propose(
        api_for(engineer), approved, {"risk_tier": "limited", "description": "New words"}
    )
    assert response.status_code == 202
    approved.refresh_from_db()
    assert (approved.risk_tier, approved.description) == ("high", "")
    # A change that weakens nothing is still made at once.
    response = api_for(engineer).patch(
        f"/api/v1/versions/{approved.pk}/", {"description": "New words"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["description"] == "New words"


def test_another_teams_engineer_can_neither_see_nor_propose(api_for, engineer, outsider, approved):
    propose(api_for(engineer), approved, {"risk_tier": "minimal"})
    api = api_for(outsider)
    assert propose(api, approved, {"risk_tier": "minimal"}).status_code == 404
    assert api.get(f"/api/v1/versions/{approved.pk}/proposals/").status_code == 404
    assert api.get("/api/v1/proposals/").json()["results"] == []
    proposal = EvidenceProposal.objects.get()
    assert api.get(f"/api/v1/proposals/{proposal.pk}/").status_code == 404
    assert api.post(f"/api/v1/proposals/{proposal.pk}/accept/").status_code == 404
    assert EvidenceProposal.objects.count() == 1


def test_the_proposer_and_the_owning_team_cannot_conclude(
    api_for, make_user, engineer, team, approved
):
    proposal_id = propose(api_for(engineer), approved, {"risk_tier": "minimal"}).json()["proposal"][
        "id"
    ]
    insider = make_user("erin", teams=[team], compliance=True)
    response = api_for(insider).post(f"/api/v1/proposals/{proposal_id}/accept/", {})
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "duty_conflict"
    assert "member of team 'acme'" in error["message"]
    # An engineer who proposed it (and is not compliance) cannot conclude anything.
    response = api_for(engineer).post(f"/api/v1/proposals/{proposal_id}/accept/", {})
    assert response.status_code == 403
    approved.refresh_from_db()
    assert approved.risk_tier == "high"
    assert EvidenceProposal.objects.get().status == "pending"


def test_a_compliance_proposer_outside_the_team_cannot_accept_their_own(
    api_for, make_user, make_version, reviewers, policies, team
):
    """Someone who proposed a change and has since left the team for compliance still may not
    conclude their own proposal."""
    carol, _ = reviewers
    proposer = make_user("frank", teams=[team])
    version = make_version(risk_tier="high", intended_use="Routing", known_limitations="EN")
    services.approval_record(actor=carol, version=version, stage="production")
    proposal_id = propose(api_for(proposer), version, {"risk_tier": "limited"}).json()["proposal"][
        "id"
    ]
    team.members.remove(proposer)
    proposer.groups.add(carol.groups.get())
    proposer = type(proposer).objects.get(pk=proposer.pk)
    response = api_for(proposer).post(f"/api/v1/proposals/{proposal_id}/accept/", {})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "duty_conflict"
    assert "frank proposed this change" in response.json()["error"]["message"]


def test_independent_compliance_accepts_and_the_approvals_stop_counting(
    api_for, engineer, reviewers, approved, django_capture_on_commit_callbacks
):
    carol, dan = reviewers
    services.approval_record(actor=dan, version=approved, stage="production")
    assert approvals_row(approved)["passed"]
    proposal_id = propose(api_for(engineer), approved, {"risk_tier": "minimal"}).json()["proposal"][
        "id"
    ]
    with django_capture_on_commit_callbacks(execute=True):
        response = api_for(dan).post(
            f"/api/v1/proposals/{proposal_id}/accept/", {"comment": "Reassessment checked"}
        )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["concluded_by"], body["conclusion"]) == (
        "accepted",
        "dan",
        "Reassessment checked",
    )
    approved.refresh_from_db()
    assert approved.risk_tier == "minimal"
    row = approvals_row(approved)
    assert not row["passed"]
    assert any("risk_tier: 'high' → 'minimal'" in reason for reason in row["reasons"])
    actions = list(
        AuditEntry.objects.filter(object_id=str(approved.pk)).values_list("action", flat=True)
    )
    assert {"version.update", "evidence.proposal_accept"} <= set(actions)
    assert approved.compliance.computed_at is not None  # the outbox's recheck ran
    # Concluded once: a second conclusion is a conflict and changes nothing.
    again = api_for(carol).post(f"/api/v1/proposals/{proposal_id}/reject/", {"comment": "no"})
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "already_concluded"


def test_reject_leaves_everything(api_for, engineer, reviewers, approved):
    _, dan = reviewers
    before = gate(approved)
    proposal_id = propose(api_for(engineer), approved, {"licence_declared": "MIT"}).json()[
        "proposal"
    ]["id"]
    refused = api_for(dan).post(f"/api/v1/proposals/{proposal_id}/reject/", {})
    assert refused.status_code == 400
    assert "comment" in refused.json()["error"]["fields"]
    response = api_for(dan).post(
        f"/api/v1/proposals/{proposal_id}/reject/", {"comment": "The licence is Apache-2.0"}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "rejected"
    approved.refresh_from_db()
    assert approved.licence_declared == "Apache-2.0"
    assert gate(approved) == before
    assert AuditEntry.objects.filter(action="evidence.proposal_reject").count() == 1
    pending = api_for(dan).get("/api/v1/proposals/?status=pending").json()["results"]
    assert pending == []


def test_a_proposal_made_stale_by_another_change_cannot_be_accepted(
    api_for, engineer, reviewers, approved
):
    carol, dan = reviewers
    proposal_id = propose(api_for(engineer), approved, {"risk_tier": "limited"}).json()["proposal"][
        "id"
    ]
    services.version_update(actor=carol, version=approved, changes={"risk_tier": "unacceptable"})
    response = api_for(dan).post(f"/api/v1/proposals/{proposal_id}/accept/", {})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "proposal_stale"
    assert (
        "risk_tier: proposed from 'high', now 'unacceptable'" in response.json()["error"]["message"]
    )
    approved.refresh_from_db()
    assert approved.risk_tier == "unacceptable"


def test_bad_input_is_refused_before_anything_is_proposed(api_for, engineer, approved):
    api = api_for(engineer)
    for body in (
        {"risk_tier": "catastrophic"},
        {"risk_tier": "minimal", "licence_declared": "Bogus-Licence-9"},
        {"risk_tier": "minimal", "reason": "x" * 4001},
        {"risk_tier": "minimal", "stage": "production"},
    ):
        response = api.patch(f"/api/v1/versions/{approved.pk}/", body, format="json")
        assert response.status_code == 400, (body, response.content)
        assert "error" in response.json()
    assert EvidenceProposal.objects.count() == 0
    response = api_for(engineer).post("/api/v1/proposals/12345678901234567890123/accept/")
    assert response.status_code == 404


def test_relabelling_a_dataset_version_used_by_an_approved_model_is_proposed(
    api_for, engineer, reviewers, policies, make_version, make_dataset_version
):
    from lineage import services as lineage_services
    from lineage.services import DatasetUse

    carol, dan = reviewers
    data = make_dataset_version(licence_declared="CC-BY-NC-4.0")
    approved = make_version(risk_tier="high", intended_use="Routing", known_limitations="EN")
    lineage_services.training_run_record(
        actor=engineer,
        version=approved,
        method="full_finetune",
        hyperparameters={"learning_rate": 0.001, "epochs": 1},
        datasets=[DatasetUse(data, "train")],
    )
    services.approval_record(actor=carol, version=approved, stage="production")
    response = api_for(engineer).patch(
        f"/api/v1/dataset-versions/{data.pk}/",
        {"licence_declared": "CC-BY-4.0", "reason": "Upstream relicensed"},
        format="json",
    )
    assert response.status_code == 202, response.content
    proposal = response.json()["proposal"]
    assert proposal["target_type"] == "dataset_version"
    assert "it uses this" in proposal["protected_because"]
    data.refresh_from_db()
    assert data.licence_declared == "CC-BY-NC-4.0"
    listed = api_for(dan).get(f"/api/v1/dataset-versions/{data.pk}/proposals/").json()
    assert [row["id"] for row in listed] == [proposal["id"]]
    accepted = api_for(dan).post(f"/api/v1/proposals/{proposal['id']}/accept/", {})
    assert accepted.status_code == 200
    data.refresh_from_db()
    assert data.licence_declared == "CC-BY-4.0"
    reasons = " ".join(approvals_row(approved)["reasons"])
    assert f"lineage[training_data][{data}][declared]: 'CC-BY-NC-4.0' → 'CC-BY-4.0'" in reasons


def test_compliance_staff_still_edit_directly(api_for, reviewers, approved):
    _, dan = reviewers
    response = api_for(dan).patch(
        f"/api/v1/versions/{approved.pk}/", {"risk_tier": "limited"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["risk_tier"] == "limited"
    assert EvidenceProposal.objects.count() == 0


def test_admin_concludes_proposals_and_shows_them_on_the_version_and_dashboard(
    client, api_for, engineer, make_user, team, reviewers, approved
):
    _, dan = reviewers
    dan.is_staff = True
    dan.save()
    insider = make_user("erin", teams=[team], compliance=True, is_staff=True)
    for officer in (dan, insider):  # the view and change permissions the demo grants
        officer.user_permissions.add(
            *Permission.objects.filter(content_type__app_label="registry").exclude(
                codename__startswith="delete_"
            )
        )
    proposal_id = propose(api_for(engineer), approved, {"risk_tier": "minimal"}).json()["proposal"][
        "id"
    ]
    client.force_login(insider)
    page = client.get(f"/admin/registry/modelversion/{approved.pk}/change/")
    assert f"Proposal #{proposal_id}" in page.content.decode()
    dashboard = client.get("/admin/").content.decode()
    assert "Evidence changes awaiting review" in dashboard
    assert "lowering the risk tier from high to minimal" in dashboard
    url = f"/admin/registry/evidenceproposal/{proposal_id}/conclude/"
    response = client.post(url, {"decision": "accept", "comment": ""}, follow=True)
    assert "member of team &#x27;acme&#x27;" in response.content.decode()
    approved.refresh_from_db()
    assert approved.risk_tier == "high"
    client.force_login(dan)
    detail = client.get(f"/admin/registry/evidenceproposal/{proposal_id}/change/")
    assert detail.status_code == 200
    assert "Accept proposal" in detail.content.decode()
    response = client.post(url, {"decision": "accept", "comment": "Checked"}, follow=True)
    assert f"Proposal #{proposal_id} accepted." in response.content.decode()
    approved.refresh_from_db()
    assert approved.risk_tier == "minimal"
    assert EvidenceProposal.objects.get().concluded_by == dan
    page = client.get(f"/admin/registry/modelversion/{approved.pk}/change/")
    assert f"Proposal #{proposal_id}" not in page.content.decode()
    assert (
        "Evidence changes awaiting review, oldest first (0)"
        in client.get("/admin/").content.decode()
    )


def test_the_proposal_list_costs_the_same_whatever_its_length(
    api_for, engineer, reviewers, approved
):
    _, dan = reviewers
    api = api_for(dan)

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert api.get("/api/v1/proposals/").status_code == 200
        return len(queries)

    propose(api_for(engineer), approved, {"risk_tier": "minimal"})
    one = count()
    for tier in ("limited", "minimal", "limited"):
        propose(api_for(engineer), approved, {"risk_tier": tier})
    assert count() == one


def test_an_engineers_admin_edit_of_protected_evidence_is_proposed(
    client, make_user, team, approved
):
    from tests.registry.test_admin import change_form_data

    insider = make_user("ivy", teams=[team], is_staff=True)
    insider.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_modelversion", "change_modelversion"])
    )
    client.force_login(insider)
    url = f"/admin/registry/modelversion/{approved.pk}/change/"
    data = change_form_data(client, url) | {"risk_tier": "minimal"}
    response = client.post(url, data, follow=True)
    assert response.status_code == 200
    proposal = EvidenceProposal.objects.get()
    assert f"recorded as proposal #{proposal.pk}" in response.content.decode()
    assert proposal.changes == {"risk_tier": "minimal"} and proposal.proposed_by == insider
    approved.refresh_from_db()
    assert approved.risk_tier == "high"
