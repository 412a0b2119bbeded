"""The `lineage_health` gate check: a held version (or one under a held ancestor) cannot move."""

import pytest

from lineage import services
from lineage.checks import lineage_health
from registry import services as registry_services
from registry.gates import GateContext, gate_evaluate, involved_user_ids, registered_checks
from registry.models import ModelVersion
from tests.conftest import digest

pytestmark = pytest.mark.django_db


def test_the_check_is_registered_by_the_app():
    assert registered_checks()["lineage_health"] is lineage_health


def test_passes_without_holds_and_reports_pinned_parents(base, derive):
    child = derive(base, relation="adapter")
    result = lineage_health(GateContext(version=child, stage="staging"))
    assert result.passed and result.reasons == []
    assert result.evidence["parents"] == [
        {
            "version_id": base.pk,
            "ref": str(base),
            "relation": "adapter",
            "pinned_digest": base.artefact_digest,
        }
    ]


def test_fails_naming_the_held_ancestor_reason_who_and_when(base, chain, compliance_user):
    versions = chain(2)
    hold = services.hold_place(
        actor=compliance_user,
        version=base,
        reason="Upstream licence withdrawn by its authors",
        category="licence",
    )
    result = lineage_health(GateContext(version=versions[2], stage="staging"))
    assert not result.passed
    (reason,) = result.reasons
    assert reason.startswith(f"held through its ancestor {base}: Upstream licence withdrawn")
    assert f"hold #{hold.pk}" in reason and "placed by carol on " in reason
    assert f"{hold.placed_at:%Y-%m-%d}" in reason
    assert result.evidence["holds"][0]["on_version_id"] == base.pk
    direct = lineage_health(GateContext(version=base, stage="staging"))
    assert direct.reasons[0].startswith("held: Upstream licence")


def test_a_held_version_cannot_be_promoted(base, derive, engineer, compliance_user):
    child = derive(
        base, intended_use="Routing", known_limitations="English only", risk_tier="minimal"
    )
    registry_services.version_update(
        actor=compliance_user, version=child, changes={"licence_concluded": "Apache-2.0"}
    )
    services.hold_place(actor=compliance_user, version=base, reason="security finding")
    evaluation = gate_evaluate(version=child, stage="staging")
    lineage = next(r for r in evaluation.results if r["check"] == "lineage_health")
    assert lineage["required"] and not lineage["passed"]
    assert str(base) in lineage["reasons"][0]
    decision = registry_services.version_promote(actor=engineer, version=child, stage="staging")
    assert not decision.passed
    assert ModelVersion.objects.get(pk=child.pk).stage == "development"


def test_a_parent_whose_artefact_changed_fails(base, derive):
    child = derive(base)
    ModelVersion.objects.filter(pk=base.pk).update(artefact_digest=digest("tampered"))
    child.refresh_from_db()
    result = lineage_health(GateContext(version=child, stage="staging"))
    assert not result.passed
    assert "not the" in result.reasons[0] and "pinned" in result.reasons[0]


def test_who_ran_the_training_cannot_approve_it(base, derive, engineer, make_user, team):
    trainer = make_user("trent", teams=[team])
    child = derive(base)
    services.training_run_record(
        actor=engineer,
        version=child,
        method="full_finetune",
        hyperparameters={"learning_rate": 1e-5},
        run_by="trent",
    )
    assert {trainer.pk, engineer.pk} <= involved_user_ids(child)
