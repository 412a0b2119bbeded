"""Gate checks contributed by evaluators, registered from `EvaluatorsConfig.ready()`.

Which suites apply: those attached to the version's model (`EvaluationSuite.models`) that set
limits for the check (`min_quality` for `quality`, `max_fairness_gaps` for `fairness`,
`max_regression` for `no_negative_transfer`). Each needs the version's latest valid run on it:
succeeded, on exactly these weights and the suite's pinned dataset, inside the suite's
freshness window. Deny by default: no such suite, or a suite without a valid run, fails the
check and says which `pedigree evaluate` to run. Failing reasons name the suite, the metric,
the attribute and group, the value and the limit. A fixed number of queries per check.
"""

from collections.abc import Callable
from typing import Any

from evaluators.engine.thresholds import Finding, check_fairness, check_quality
from evaluators.models import EvaluationSuite
from evaluators.selectors import (
    SuiteEvidence,
    comparable_parent_edges,
    evaluation_evidence,
    latest_valid_runs,
    parent_comparisons,
    suites_for,
)
from lineage.selectors import gate_parent_edges
from registry.gates import CheckResult, GateContext
from registry.memo import remembered
from registry.models import ModelVersion

LIMITS = {
    "quality": "min_quality",
    "fairness": "max_fairness_gaps",
    "no_negative_transfer": "max_regression",
}


# What the checks, their reasons and their evidence read of a suite.
GATE_SUITE_FIELDS = (
    "name",
    "dataset_sha256",
    "freshness_days",
    "min_quality",
    "max_fairness_gaps",
    "max_regression",
)


def _gate_suites(version: ModelVersion) -> list[EvaluationSuite]:
    """The suites that apply to `version`, as the checks read them; once per gate evaluation
    (`read_memo`), shared by the checks and the evidence snapshot the approvals check takes."""
    return remembered(
        ("evaluators.suites", version.pk),
        lambda: list(suites_for(version).select_related(None).only(*GATE_SUITE_FIELDS)),
    )


def _reads(context: GateContext) -> tuple[list[SuiteEvidence], dict[tuple[int, int], Any]]:
    """What the three checks read, once per gate evaluation: each applicable suite's evidence,
    and the latest valid runs on those suites of the version and of its parents (two queries:
    the suites, the runs)."""

    def read():
        version = context.version
        suites = _gate_suites(version)
        parents = [edge.parent_id for edge in gate_parent_edges(context)]
        runs = latest_valid_runs([version.pk, *parents], suites)
        return evaluation_evidence(version, suites, runs), runs

    return context.shared("evaluators.runs", read)


def _evidence(context: GateContext, check: str) -> list[SuiteEvidence] | CheckResult:
    """The evidence on each suite setting this check's limits, or the failing result when
    no suite does."""
    version, limits = context.version, LIMITS[check]
    evidence, _ = _reads(context)
    relevant = [item for item in evidence if getattr(item.suite, limits)]
    if relevant:
        return relevant
    return CheckResult(
        check,
        False,
        [
            f"no evaluation suite with {limits} limits applies to {version.model.name}, so "
            f"there is no valid evaluation; attach one to the model (PATCH "
            f'/api/v1/evaluation-suites/ID/ with "models") and run '
            f"`pedigree evaluate {version} --suite SUITE`"
        ],
        evidence={"suites": []},
    )


def _threshold_check(
    context: GateContext, check: str, judge: Callable[[dict, dict], list[Finding]]
) -> CheckResult:
    evidence = _evidence(context, check)
    if isinstance(evidence, CheckResult):
        return evidence
    reasons: list[str] = []
    rows: list[dict[str, Any]] = []
    for item in evidence:
        row = item.to_dict()
        limits = getattr(item.suite, LIMITS[check])
        row["limits"] = limits
        if item.run is None:
            reasons.append(item.reason)
        else:
            findings = judge(item.run.result.metrics_dict(), limits)
            reasons += [f"{item.suite.name}: {f.message} (run #{item.run.pk})" for f in findings]
            row["findings"] = [finding.to_dict() for finding in findings]
        rows.append(row)
    return CheckResult(check, not reasons, reasons, evidence={"suites": rows})


def quality_met(context: GateContext) -> CheckResult:
    """Every applicable suite's minimum overall metrics are met."""
    return _threshold_check(context, "quality", check_quality)


def fairness_within_limits(context: GateContext) -> CheckResult:
    """Every sensitive attribute's gaps are within every applicable suite's limits."""
    return _threshold_check(context, "fairness", check_fairness)


def no_negative_transfer(context: GateContext) -> CheckResult:
    """Not worse than any parent beyond the suite's allowed regression, comparing the latest
    valid runs of both on the same suite. A parent without one fails the check (a gate writes
    nothing, so it does not start one): the reason says to run `pedigree evaluate PARENT`.
    A version without parents (an upstream model) has nothing to compare with and passes."""
    version = context.version
    edges = comparable_parent_edges(version, gate_parent_edges(context))
    if not edges:
        return CheckResult(
            "no_negative_transfer",
            True,
            evidence={"parents": [], "note": "no parent model to compare with"},
        )
    evidence = _evidence(context, "no_negative_transfer")
    if isinstance(evidence, CheckResult):
        return evidence
    child_runs = {item.suite.pk: item.run for item in evidence if item.run is not None}
    comparisons = parent_comparisons(version, child_runs, edges, _reads(context)[1])
    reasons: list[str] = []
    rows: list[dict[str, Any]] = []
    for item in evidence:
        row = {**item.to_dict(), "limits": item.suite.max_regression}
        if item.run is None:
            reasons.append(item.reason)
        else:
            row["parents"] = [c.to_dict() for c in comparisons[item.suite.pk]]
            for comparison in comparisons[item.suite.pk]:
                if comparison.run is None:
                    reasons.append(comparison.reason)
                    continue
                reasons += [
                    f"{item.suite.name}: against parent {comparison.parent}, "
                    f"{finding.message} (runs #{item.run.pk} and #{comparison.run.pk})"
                    for finding in comparison.findings
                ]
        rows.append(row)
    return CheckResult(
        "no_negative_transfer",
        not reasons,
        reasons,
        evidence={"suites": rows, "parents": [str(edge.parent) for edge in edges]},
    )


def evaluation_evidence_snapshot(version: ModelVersion) -> dict[str, Any]:
    """What an approval binds to of the evaluations (two queries): for each suite that applies,
    the id of the version's latest valid run on it (None: none yet)."""
    suites = _gate_suites(version)
    runs = latest_valid_runs([version.pk], suites)
    return {
        suite.name: (run.pk if (run := runs.get((version.pk, suite.pk))) else None)
        for suite in suites
    }
