"""Evidence is protected: once a version has an approval or is past development, changes that
could weaken a gate check need compliance staff, and every change voids the approvals it
touches, the gate naming what changed."""

import pytest

from lineage import services as lineage_services
from lineage.services import DatasetUse, ParentSpec
from registry import gates, services
from registry.errors import PermissionRefused
from registry.models import Approval, ModelVersion, StagePolicy

pytestmark = pytest.mark.django_db


@pytest.fixture
def policies(db):
    """Production needs metadata and one approval for every tier a test moves between."""
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
def candidate(make_version, reviewers, policies):
    carol, _ = reviewers
    version = make_version(
        risk_tier="high",
        intended_use="Routing support tickets",
        known_limitations="English only. Not for medical triage.",
    )
    return services.version_update(
        actor=carol, version=version, changes={"licence_concluded": "Apache-2.0"}
    )


def approvals_check(version, stage="production"):
    version = ModelVersion.objects.select_related("model__team").get(pk=version.pk)
    result = gates.gate_evaluate(version=version, stage=stage).to_dict()
    return next(row for row in result["checks"] if row["check"] == "approvals")


def test_an_engineer_cannot_lower_the_tier_after_an_approval(
    api_for, engineer, reviewers, candidate
):
    """The bypass: high → minimal after one approval made fairness informational and one
    approval enough."""
    carol, dan = reviewers
    services.approval_record(actor=carol, version=candidate, stage="production")
    # The service refuses it to an engineer; the API records it as a proposal instead
    # (tests/registry/test_proposals.py), changing nothing either way.
    with pytest.raises(PermissionRefused) as refused:
        services.version_update(actor=engineer, version=candidate, changes={"risk_tier": "minimal"})
    assert refused.value.code == "evidence_protected"
    assert "lowering the risk tier from high to minimal" in refused.value.message
    assert "has a compliance approval" in refused.value.message
    assert "risk_tier" in refused.value.fields
    response = api_for(engineer).patch(
        f"/api/v1/versions/{candidate.pk}/", {"risk_tier": "minimal"}, format="json"
    )
    assert response.status_code == 202
    proposal = response.json()["proposal"]
    assert proposal["weakening"] == {"risk_tier": "lowering the risk tier from high to minimal"}
    assert "has a compliance approval" in proposal["protected_because"]
    candidate.refresh_from_db()
    assert candidate.risk_tier == "high"
    # Compliance may conclude it; the approval given for the high tier then stops counting.
    services.version_update(actor=dan, version=candidate, changes={"risk_tier": "minimal"})
    result = approvals_check(candidate)
    assert not result["passed"]
    assert any("risk_tier: 'high' → 'minimal'" in reason for reason in result["reasons"])


def test_a_production_version_cannot_be_edited_to_a_lower_tier(engineer, make_version, reviewers):
    StagePolicy.objects.update_or_create(
        stage="staging", risk_tier="high", defaults={"required_checks": [], "allowed": True}
    )
    version = make_version(risk_tier="high")
    services.version_promote(actor=engineer, version=version, stage="staging")
    version.refresh_from_db()
    assert version.stage == "staging"
    for lower in ("limited", "minimal"):
        with pytest.raises(PermissionRefused, match="is in staging"):
            services.version_update(actor=engineer, version=version, changes={"risk_tier": lower})
    # Tightening is always allowed.
    services.version_update(actor=engineer, version=version, changes={"risk_tier": "unacceptable"})


def test_fewer_limitations_or_another_licence_need_compliance(engineer, reviewers, candidate):
    carol, _ = reviewers
    services.approval_record(actor=carol, version=candidate, stage="production")
    for changes in (
        {"known_limitations": "English only."},
        {"licence_declared": "MIT"},
        {"intended_use": "Anything"},
    ):
        with pytest.raises(PermissionRefused) as refused:
            services.version_update(actor=engineer, version=candidate, changes=changes)
        assert set(refused.value.fields) == set(changes)
    # Adding a limitation weakens nothing, but it still voids the approval that saw the old text.
    services.version_update(
        actor=engineer,
        version=candidate,
        changes={"known_limitations": "English only. Not for medical triage. Not for legal."},
    )
    result = approvals_check(candidate)
    assert not result["passed"]
    assert any("known_limitations: changed" in reason for reason in result["reasons"])


def test_relabelling_training_data_needs_compliance_and_voids_approvals(
    engineer, reviewers, candidate, make_dataset_version
):
    """The bypass: a training dataset relabelled from CC-BY-NC-4.0 to CC-BY-4.0."""
    carol, dan = reviewers
    data = make_dataset_version(licence_declared="CC-BY-NC-4.0")
    lineage_services.training_run_record(
        actor=engineer,
        version=candidate,
        method="full_finetune",
        hyperparameters={"learning_rate": 0.001, "epochs": 1},
        datasets=[DatasetUse(data, "train")],
    )
    services.approval_record(actor=carol, version=candidate, stage="production")
    with pytest.raises(PermissionRefused, match="it uses this") as refused:
        services.dataset_version_update(
            actor=engineer, dataset_version=data, changes={"licence_declared": "CC-BY-4.0"}
        )
    assert "changing the licence declared from CC-BY-NC-4.0 to CC-BY-4.0" in refused.value.message
    data.refresh_from_db()
    assert data.licence_declared == "CC-BY-NC-4.0"
    services.dataset_version_update(
        actor=dan, dataset_version=data, changes={"licence_declared": "CC-BY-4.0"}
    )
    reasons = " ".join(approvals_check(candidate)["reasons"])
    assert f"lineage[training_data][{data}][declared]: 'CC-BY-NC-4.0' → 'CC-BY-4.0'" in reasons


def test_parents_and_training_data_of_an_approved_version_are_only_proposed(
    api_for, engineer, reviewers, candidate, make_version, make_dataset_version
):
    carol, _ = reviewers
    services.approval_record(actor=carol, version=candidate, stage="production")
    parent = make_version()
    # The services that make the change refuse it to an engineer; the API records it as a
    # proposal instead (tests/lineage/test_lineage_proposals.py), changing nothing either way.
    response = api_for(engineer).post(
        f"/api/v1/versions/{candidate.pk}/parents/",
        {"parents": [{"version": parent.pk, "relation": "finetune"}]},
        format="json",
    )
    assert response.status_code == 202
    assert response.json()["proposal"]["kind"] == "parents_add"
    with pytest.raises(PermissionRefused, match=r"lineage of .* is gate evidence"):
        lineage_services.edges_create(
            actor=engineer, child=candidate, parents=[ParentSpec(parent, "finetune")]
        )
    with pytest.raises(PermissionRefused, match="gate evidence"):
        lineage_services.training_run_record(
            actor=engineer,
            version=candidate,
            method="full_finetune",
            hyperparameters={"learning_rate": 0.001, "epochs": 1},
            datasets=[DatasetUse(make_dataset_version(), "train")],
        )
    # Compliance staff may correct the lineage; the approval then names the new parent.
    lineage_services.edges_create(
        actor=carol, child=candidate, parents=[ParentSpec(parent, "finetune")]
    )
    reasons = " ".join(approvals_check(candidate)["reasons"])
    assert f"lineage[parents][{parent}]: added ('finetune')" in reasons


def test_an_ancestors_licence_is_evidence_of_its_descendants(
    engineer, reviewers, policies, make_version
):
    carol, dan = reviewers
    base = make_version(licence_declared="Apache-2.0")
    child = make_version(
        risk_tier="minimal", intended_use="Routing", known_limitations="English only"
    )
    lineage_services.edges_create(
        actor=engineer, child=child, parents=[ParentSpec(base, "finetune")]
    )
    services.approval_record(actor=carol, version=child, stage="production")
    # The base itself is neither approved nor staged, but its descendant is.
    with pytest.raises(PermissionRefused, match=f"{child} has a compliance approval"):
        services.version_update(
            actor=engineer, version=base, changes={"licence_declared": "CC-BY-NC-4.0"}
        )
    services.version_update(actor=dan, version=base, changes={"licence_declared": "MIT"})
    reasons = " ".join(approvals_check(child)["reasons"])
    assert f"lineage[ancestors][{base}][declared]: 'Apache-2.0' → 'MIT'" in reasons


def test_a_policy_revision_voids_the_approvals_given_under_the_old_one(
    reviewers, candidate, policies
):
    carol, dan = reviewers
    services.approval_record(actor=carol, version=candidate, stage="production")
    services.approval_record(actor=dan, version=candidate, stage="production")
    assert approvals_check(candidate)["passed"]
    policy = StagePolicy.objects.get(stage="production", risk_tier="high")
    services.stage_policy_update(actor=carol, policy=policy, changes={"approvals_required": 2})
    result = approvals_check(candidate)
    assert not result["passed"]
    assert any("stage_policy_revision" in reason for reason in result["reasons"])


def test_engineers_still_edit_development_versions_freely(engineer, make_version, policies):
    version = make_version(risk_tier="high", known_limitations="English only")
    services.version_update(
        actor=engineer,
        version=version,
        changes={"risk_tier": "minimal", "known_limitations": "", "licence_declared": "MIT"},
    )
    version.refresh_from_db()
    assert (version.risk_tier, version.licence_declared) == ("minimal", "MIT")


def test_an_approval_without_a_snapshot_no_longer_counts(reviewers, candidate):
    """An approval given before approvals kept a snapshot (as migrated rows are) cannot say
    what it approved: it stops counting, the check says why, and a fresh one counts again."""
    carol, dan = reviewers
    legacy = services.approval_record(actor=carol, version=candidate, stage="production")
    services.approval_record(actor=dan, version=candidate, stage="production")
    assert approvals_check(candidate)["passed"]
    Approval.objects.filter(pk=legacy.pk).update(evidence={})
    result = approvals_check(candidate)
    assert not result["passed"]
    assert any(
        f"approval #{legacy.pk} no longer counts: it was given on" in reason
        and "before approvals recorded the evidence they saw, so what it approved is unknown"
        in reason
        for reason in result["reasons"]
    )
    assert "1 of 2 required compliance approval(s)" in result["reasons"][-1]
    services.approval_record(actor=carol, version=candidate, stage="production")
    assert approvals_check(candidate)["passed"]
