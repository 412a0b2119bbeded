"""What evaluations add to the compliance console: a summary at the top of a version's page
(each metric against its limit, the worst group highlighted), metrics overall and per group in
the comparison of two versions, and the runs in a version's timeline."""

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from evaluators.engine.names import FAIRNESS_METRICS
from evaluators.models import EvaluationRun
from evaluators.selectors import evaluation_evidence, run_findings
from registry.models import ModelVersion
from registry.plugins import (
    ComparisonSection,
    TimelineEvent,
    TimelineProvider,
    VersionSummary,
)
from registry.types import Reader

# Per-group measures compared and summarised; the worst group is the one lowest on the first.
GROUP_METRICS = ("accuracy", "macro_f1")


def _worst(groups: dict[str, dict[str, Any]]) -> str | None:
    """The group doing worst on accuracy among those large enough to be judged."""
    judged = {
        name: row
        for name, row in groups.items()
        if not row.get("small") and row.get("accuracy") is not None
    }
    return min(judged, key=lambda name: judged[name]["accuracy"]) if judged else None


def summary_context(request: HttpRequest, version: ModelVersion) -> dict[str, Any]:
    """Per applicable suite: the overall metrics against their minimums, the fairness gaps
    against their maximums, every group with the worst marked, and the findings."""
    suites: list[dict[str, Any]] = []
    for item in evaluation_evidence(version):
        if item.run is None:
            suites.append({"suite": item.suite, "run": None, "reason": item.reason})
            continue
        result, suite = item.run.result, item.suite
        failing = {(f.metric, f.attribute) for f in run_findings(item.run)}
        metrics = [
            {
                "name": metric,
                "value": value,
                "limit": f"≥ {suite.min_quality[metric]}",
                "fails": (metric, None) in failing,
            }
            for metric, value in result.overall.items()
            if metric in suite.min_quality
        ]
        attributes = []
        for attribute, groups in sorted(result.groups.items()):
            gaps = result.fairness.get(attribute, {})
            for metric in FAIRNESS_METRICS:
                if metric in gaps and metric in suite.max_fairness_gaps:
                    metrics.append(
                        {
                            "name": f"{metric} ({attribute})",
                            "value": gaps[metric],
                            "limit": f"≤ {suite.max_fairness_gaps[metric]}",
                            "fails": (metric, attribute) in failing,
                        }
                    )
            worst = _worst(groups)
            attributes.append(
                {
                    "name": attribute,
                    "worst": worst,
                    "rows": [
                        {"group": group, "worst": group == worst, **row}
                        for group, row in sorted(groups.items())
                    ],
                }
            )
        suites.append(
            {
                "suite": suite,
                "run": item.run,
                "metrics": metrics,
                "attributes": attributes,
                "findings": run_findings(item.run),
            }
        )
    return {"version": version, "suites": suites}


def metric_facts(reader: Reader, version: ModelVersion) -> dict[str, Any]:
    """Each applicable suite's metrics overall, per group and its fairness gaps."""
    facts: dict[str, Any] = {}
    for item in evaluation_evidence(version):
        if item.run is None:
            facts[f"{item.suite.name}"] = "no valid evaluation"
            continue
        result, name = item.run.result, item.suite.name
        for metric, value in result.overall.items():
            if metric != "n":
                facts[f"{name} · {metric}"] = value
        for attribute, groups in sorted(result.groups.items()):
            for group, row in sorted(groups.items()):
                for metric in GROUP_METRICS:
                    facts[f"{name} · {metric} · {attribute}={group}"] = row.get(metric)
            for metric, value in result.fairness.get(attribute, {}).items():
                if metric in FAIRNESS_METRICS:
                    facts[f"{name} · {metric} ({attribute})"] = value
    return facts


def evaluation_events(version: ModelVersion) -> list[TimelineEvent]:
    """Every evaluation run of the version, when it finished (or was asked for). One query."""
    runs = EvaluationRun.objects.filter(version=version).select_related("suite", "requested_by")
    return [
        TimelineEvent(
            run.finished_at or run.requested_at,
            "evaluation",
            f"{run.suite.name}: {run.status}"
            + (f" on {run.device}" if run.device else "")
            + f", asked by {run.requested_by}",
            reverse("admin:evaluators_evaluationrun_change", args=[run.pk]),
        )
        for run in runs
    ]


CONTRIBUTIONS = (
    VersionSummary("evaluators/version_summary.html", summary_context),
    ComparisonSection("Evaluation metrics", metric_facts),
    TimelineProvider("evaluations", evaluation_events),
)
