"""The gate checks `quality`, `fairness` and `no_negative_transfer`, on real evaluations of
tiny models whose numbers are known in advance (see conftest)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from evaluators.models import EvaluationResult, EvaluationRun, RunStatus
from evaluators.services import suite_update
from registry import services as registry_services
from registry.gates import gate_evaluate
from registry.models import AuditEntry, StagePolicy
from tests.conftest import digest
from tests.evaluators.conftest import BIASED_ACCURACY

pytestmark = pytest.mark.django_db

FAIRNESS_REASON = (
    "tickets-fairness: accuracy gap for region is 0.50 (worst group 'south' 0.30 vs best "
    "'north' 0.80), limit 0.10 (run #{run})"
)


def checks(version, stage="staging") -> dict[str, dict]:
    evaluation = gate_evaluate(version=version, stage=stage)
    return {row["check"]: row for row in evaluation.results}


def test_biased_model_fails_fairness_naming_group_gap_and_limit(models, make_suite, evaluate):
    suite = make_suite(models=["acme/biased"])

    run = evaluate(models["biased"], suite)

    result = run.result
    assert run.status == RunStatus.SUCCEEDED
    assert result.overall["accuracy"] == BIASED_ACCURACY
    # east has 3 rows, under the suite's minimum of 5: it is neither named nor measured.
    assert {g: row["accuracy"] for g, row in result.groups["region"].items()} == {
        "north": 0.8,
        "south": 0.3,
    }
    fairness = result.fairness["region"]
    assert fairness["accuracy_gap"] == 0.5
    assert (fairness["worst_group"], fairness["best_group"]) == ("south", "north")
    assert fairness["excluded_groups"] == 1
    assert fairness["demographic_parity_difference"] == 0.0

    gate = checks(models["biased"])
    assert gate["fairness"]["passed"] is False
    assert gate["fairness"]["reasons"] == [FAIRNESS_REASON.format(run=run.pk)]
    (evidence,) = gate["fairness"]["evidence"]["suites"]
    assert evidence["run"] == run.pk
    assert evidence["artefact_digest"] == models["biased"].artefact_digest
    assert evidence["dataset_sha256"] == suite.dataset_sha256
    (finding,) = evidence["findings"]
    assert (finding["attribute"], finding["group"], finding["value"], finding["limit"]) == (
        "region",
        "south",
        0.5,
        0.1,
    )
    assert gate["quality"]["passed"] is True  # 0.56 accuracy meets the 0.5 minimum
    assert gate["no_negative_transfer"]["passed"] is True  # no parent


def test_fair_model_passes_quality_and_fairness(models, make_suite, evaluate):
    suite = make_suite(models=["acme/fair-head"])

    run = evaluate(models["fair"], suite)

    assert run.evaluator == "embedding-head"
    assert run.base_version == models["encoder"]
    assert run.base_digest == models["encoder"].artefact_digest
    assert run.result.overall["accuracy"] == 1.0
    assert {row["accuracy"] for row in run.result.groups["region"].values()} == {1.0}
    assert run.result.fairness["region"]["accuracy_gap"] == 0.0
    gate = checks(models["fair"])
    for name in ("quality", "fairness", "no_negative_transfer"):
        assert gate[name]["passed"] is True, gate[name]["reasons"]
    # The encoder it runs on is not a classifier: not a parent to compare with.
    assert gate["no_negative_transfer"]["evidence"]["parents"] == []


def test_derived_model_worse_than_its_parent_fails_no_negative_transfer(
    models, make_suite, evaluate
):
    suite = make_suite(models=["acme/fair-head", "acme/worse-head"])
    parent_run = evaluate(models["fair"], suite)

    child_run = evaluate(models["worse"], suite)

    assert child_run.base_version == models["encoder"]  # the root base, through its parent
    (comparison,) = child_run.result.comparison
    assert comparison["parent"] == "acme/fair-head@v1"
    assert comparison["parent_run"] == parent_run.pk
    assert comparison["deltas"]["accuracy"] == round(BIASED_ACCURACY - 1.0, 6)
    gate = checks(models["worse"])
    assert gate["no_negative_transfer"]["passed"] is False
    assert gate["no_negative_transfer"]["reasons"] == [
        "tickets-fairness: against parent acme/fair-head@v1, accuracy dropped by 0.44 from "
        f"parent 1.00 to child 0.56 (negative transfer), allowed drop 0.02 (runs "
        f"#{child_run.pk} and #{parent_run.pk})"
    ]
    (suite_row,) = gate["no_negative_transfer"]["evidence"]["suites"]
    assert suite_row["parents"][0]["findings"][0]["value"] == round(1.0 - BIASED_ACCURACY, 6)


def test_parent_without_a_valid_run_fails_with_what_to_run(models, make_suite, evaluate):
    suite = make_suite(models=["acme/worse-head"])
    evaluate(models["worse"], suite)

    gate = checks(models["worse"])

    (reason,) = gate["no_negative_transfer"]["reasons"]
    assert "no valid evaluation of acme/fair-head@v1" in reason
    assert "run `pedigree evaluate acme/fair-head@v1 --suite tickets-fairness`" in reason
    assert "cannot be compared with its parent" in reason


def test_no_suite_or_no_run_fails_every_check(models, make_suite):
    gate = checks(models["worse"])
    for name in ("quality", "fairness", "no_negative_transfer"):
        assert gate[name]["passed"] is False
        (reason,) = gate[name]["reasons"]
        assert "no valid evaluation" in reason
        assert "`pedigree evaluate acme/worse-head@v1 --suite SUITE`" in reason

    make_suite(models=["acme/worse-head"])
    gate = checks(models["worse"])
    assert gate["fairness"]["reasons"] == [
        "tickets-fairness: no valid evaluation of acme/worse-head@v1 (sha256 "
        f"{models['worse'].artefact_digest[:12]}…); run `pedigree evaluate "
        "acme/worse-head@v1 --suite tickets-fairness`"
    ]


def test_suite_without_limits_for_a_check_does_not_count_for_it(models, make_suite, evaluate):
    suite = make_suite(models=["acme/biased"], max_fairness_gaps={})
    evaluate(models["biased"], suite)

    gate = checks(models["biased"])

    assert gate["quality"]["passed"] is True
    assert gate["fairness"]["passed"] is False
    assert "no evaluation suite with max_fairness_gaps limits" in gate["fairness"]["reasons"][0]


def test_stale_evaluation_does_not_count(models, make_suite, evaluate):
    suite = make_suite(models=["acme/fair-head"], freshness_days=30)
    run = evaluate(models["fair"], suite)
    EvaluationRun.objects.filter(pk=run.pk).update(finished_at=timezone.now() - timedelta(days=31))

    gate = checks(models["fair"])

    assert gate["quality"]["passed"] is False
    assert gate["quality"]["reasons"] == [
        f"tickets-fairness: the latest evaluation of acme/fair-head@v1 (run #{run.pk}, "
        f"{(timezone.now() - timedelta(days=31)):%Y-%m-%d}) is older than the suite's 30-day "
        "freshness window; run `pedigree evaluate acme/fair-head@v1 --suite tickets-fairness`"
    ]


def test_evaluation_of_other_weights_does_not_count(models, make_suite, evaluate):
    suite = make_suite(models=["acme/fair-head"])
    run = evaluate(models["fair"], suite)
    EvaluationRun.objects.filter(pk=run.pk).update(artefact_digest=digest("other weights"))

    gate = checks(models["fair"])

    assert gate["fairness"]["passed"] is False
    assert "no valid evaluation of acme/fair-head@v1" in gate["fairness"]["reasons"][0]


def test_limits_tightened_later_are_applied_to_stored_results(
    models, make_suite, evaluate, engineer
):
    suite = make_suite(models=["acme/biased"])
    evaluate(models["biased"], suite)

    suite_update(actor=engineer, suite=suite, changes={"min_quality": {"accuracy": 0.9}})

    gate = checks(models["biased"])
    assert gate["quality"]["passed"] is False
    assert "accuracy is 0.56, below the minimum 0.90" in gate["quality"]["reasons"][0]


def _fabricated_run(version, suite, accuracy: float) -> EvaluationRun:
    """A succeeded run with a result, written directly (the query-count test needs many)."""
    run = EvaluationRun.objects.create(
        suite=suite,
        version=version,
        artefact_digest=version.artefact_digest,
        dataset_sha256=suite.dataset_sha256,
        evaluator="transformers-sequence-classification",
        status=RunStatus.SUCCEEDED,
        finished_at=timezone.now(),
        requested_by=version.registered_by,
    )
    EvaluationResult.objects.create(
        run=run,
        labels=["negative", "positive"],
        min_group_size=5,
        overall={"n": 43, "accuracy": accuracy},
        groups={},
        fairness={"region": {"accuracy_gap": 0.05, "worst_group": "a", "best_group": "b"}},
    )
    return run


def test_checks_do_a_bounded_number_of_queries(models, make_suite):
    def queries(version) -> int:
        with CaptureQueriesContext(connection) as captured:
            gate_evaluate(version=version, stage="staging")
        return len(captured)

    suite = make_suite("suite-0", models=["acme/fair-head", "acme/worse-head"])
    for version in (models["fair"], models["worse"]):
        _fabricated_run(version, suite, 0.9)
    few = queries(models["worse"])
    for index in range(1, 6):
        more = make_suite(f"suite-{index}", models=["acme/fair-head", "acme/worse-head"])
        for version in (models["fair"], models["worse"]):
            for _ in range(3):
                _fabricated_run(version, more, 0.9)

    assert queries(models["worse"]) == few
    assert all(
        row["passed"]
        for row in checks(models["worse"]).values()
        if row["check"] in ("quality", "fairness", "no_negative_transfer")
    )


def test_promotion_is_refused_by_a_failing_fairness_check(
    models, make_suite, evaluate, compliance_user, engineer
):
    suite = make_suite(models=["acme/biased"])
    evaluate(models["biased"], suite)
    policy = StagePolicy.objects.get(stage="staging", risk_tier=models["biased"].risk_tier)
    registry_services.stage_policy_update(
        actor=compliance_user,
        policy=policy,
        changes={"required_checks": ["fairness"], "approvals_required": 0},
    )

    decision = registry_services.version_promote(
        actor=engineer, version=models["biased"], stage="staging"
    )

    assert decision.passed is False
    (failing,) = [r for r in decision.results if r["required"] and not r["passed"]]
    assert failing["check"] == "fairness"
    assert "worst group 'south'" in failing["reasons"][0]
    assert AuditEntry.objects.filter(action="version.promotion_refused").exists()
