"""Judge a metrics dict (the output of `compute_metrics`) against limits.

Every check denies by default: a limit on a metric that was not computed, or that could not
be assessed (too few comparable groups), is a finding, not a pass. Findings are sorted by
attribute and metric so the same inputs always give the same list.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    check: str  # "quality" | "fairness" | "regression"
    metric: str
    attribute: str | None
    group: str | None
    value: float | None
    limit: float
    message: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_quality(metrics_dict: dict[str, Any], min_metrics: dict[str, float]) -> list[Finding]:
    """Each overall metric must be at least its minimum (all quality metrics: higher is better)."""
    overall = metrics_dict.get("overall", {})
    findings = []
    for metric, limit in sorted(min_metrics.items()):
        value = overall.get(metric)
        if value is None:
            findings.append(
                _finding(
                    "quality",
                    metric,
                    value=None,
                    limit=limit,
                    message=f"{_label(metric)} was not computed, so minimum {_fmt(limit)} "
                    "cannot be confirmed",
                )
            )
        elif value < limit:
            a, b = _fmt_pair(value, limit)
            findings.append(
                _finding(
                    "quality",
                    metric,
                    value=value,
                    limit=limit,
                    message=f"{_label(metric)} is {a}, below the minimum {b}",
                )
            )
    return findings


def check_fairness(metrics_dict: dict[str, Any], max_gaps: dict[str, float]) -> list[Finding]:
    """Check every sensitive attribute against each limit.

    Differences and gaps (`accuracy_gap`, `demographic_parity_difference`,
    `equalized_odds_difference`) must not exceed their limit. Ratios
    (`demographic_parity_ratio`, where 1 is parity) must not fall below it, e.g. 0.8 for the
    four-fifths rule.
    """
    fairness = metrics_dict.get("fairness", {})
    if max_gaps and not fairness:
        return [
            _finding(
                "fairness",
                metric,
                value=None,
                limit=limit,
                message=f"no sensitive attribute was evaluated, so the {_label(metric)} limit "
                f"{_fmt(limit)} cannot be confirmed",
            )
            for metric, limit in sorted(max_gaps.items())
        ]
    findings = []
    for attribute, result in sorted(fairness.items()):
        for metric, limit in sorted(max_gaps.items()):
            finding = _fairness_finding(attribute, result, metric, limit)
            if finding is not None:
                findings.append(finding)
    return findings


def _fairness_finding(
    attribute: str, result: dict[str, Any], metric: str, limit: float
) -> Finding | None:
    value = result.get(metric)
    if value is None:
        reason = result.get("note") if metric in result else "it was not computed"
        return _finding(
            "fairness",
            metric,
            attribute=attribute,
            value=None,
            limit=limit,
            message=f"{_label(metric)} for {attribute} cannot be assessed ({reason}), "
            f"limit {_fmt(limit)}",
        )
    is_ratio = metric.endswith("_ratio")
    if (value >= limit) if is_ratio else (value <= limit):
        return None
    a, b = _fmt_pair(value, limit)
    if metric == "accuracy_gap":
        group = result["worst_group"]
        detail = (
            f"worst group {group!r} {_fmt(result['worst_group_accuracy'])} vs best "
            f"{result['best_group']!r} {_fmt(result['best_group_accuracy'])}"
        )
    else:
        where = result.get("attribution", {}).get(metric) or {}
        # The disadvantaged group: least often selected, lowest TPR, or highest FPR.
        side = "high" if where.get("rate") == "false_positive_rate" else "low"
        group = where.get(f"{side}_group")
        rate = where.get("rate", "rate").replace("_", " ")
        detail = (
            f"class {where.get('class')!r}: {rate} {_fmt(where.get('low_value'))} for "
            f"{where.get('low_group')!r} vs {_fmt(where.get('high_value'))} for "
            f"{where.get('high_group')!r}"
        )
    relation = "minimum" if is_ratio else "limit"
    return _finding(
        "fairness",
        metric,
        attribute=attribute,
        group=group,
        value=value,
        limit=limit,
        message=f"{_label(metric)} for {attribute} is {a} ({detail}), {relation} {b}",
    )


def check_regression(
    child_metrics: dict[str, Any],
    parent_metrics: dict[str, Any],
    max_regression: dict[str, float],
) -> list[Finding]:
    """Negative transfer: the child may be worse than its parent by at most the allowed drop.

    Compares overall quality metrics (higher is better); `value` is the drop
    (parent - child). Both dicts must come from the same dataset for this to mean anything.
    """
    child, parent = child_metrics.get("overall", {}), parent_metrics.get("overall", {})
    findings = []
    for metric, allowed in sorted(max_regression.items()):
        new, old = child.get(metric), parent.get(metric)
        if new is None or old is None:
            missing = "child" if new is None else "parent"
            findings.append(
                _finding(
                    "regression",
                    metric,
                    value=None,
                    limit=allowed,
                    message=f"{_label(metric)} of the {missing} was not computed, so the "
                    "child cannot be compared with its parent",
                )
            )
            continue
        drop = round(old - new, 6)
        if drop > allowed:
            a, b = _fmt_pair(drop, allowed)
            findings.append(
                _finding(
                    "regression",
                    metric,
                    value=drop,
                    limit=allowed,
                    message=f"{_label(metric)} dropped by {a} from parent {_fmt(old)} to "
                    f"child {_fmt(new)} (negative transfer), allowed drop {b}",
                )
            )
    return findings


def _finding(
    check: str,
    metric: str,
    *,
    value: float | None,
    limit: float,
    message: str,
    attribute: str | None = None,
    group: str | None = None,
) -> Finding:
    return Finding(
        check=check,
        metric=metric,
        attribute=attribute,
        group=group,
        value=value,
        limit=limit,
        message=message,
    )


def _label(metric: str) -> str:
    return metric.replace("_", " ")


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _fmt_pair(value: float, limit: float) -> tuple[str, str]:
    """Format value and limit with enough decimals that they never read as equal."""
    for decimals in (2, 4, 6):
        a, b = f"{value:.{decimals}f}", f"{limit:.{decimals}f}"
        if a != b:
            return a, b
    return f"{value!r}", f"{limit!r}"
