"""Quality metrics (scikit-learn) and per-group fairness metrics (fairlearn).

Positive label. Selection rates, demographic parity and equalized odds are defined for one
"positive" outcome. With a declared `positive_label` that label is used one-vs-rest. Without
one, a binary task uses `labels[1]` (id 1 in the model's id2label, the usual positive
class). A multiclass task without one treats every class one-vs-rest, in `labels` order, and
reports the worst value over classes (the largest difference, the smallest ratio) together
with the class and groups it came from; on a tie the class that comes first in `labels`, and
the group that sorts first, is named. This makes the result deterministic and never hides a
disparity that only one class shows.

Equalized odds. `equalized_odds_difference` is fairlearn's definition, the larger of the
between-group differences in true-positive rate and in false-positive rate, except that a
rate undefined in a group (no actual positives for the TPR, no actual negatives for the FPR)
is left out of the comparison instead of being counted as 0, which would report a disparity
that the data cannot show.

Small groups. Groups with fewer than `min_group_size` rows are never named or measured in
the output, so a sensitive "attribute" that singles rows out (an id column) shows nothing of
any row: they are left out of `groups` and of every fairness number, and only counted
(`excluded_groups`); an attribute with fewer than two comparable groups gets `null` fairness
numbers and a note.

Macro averages (`macro_f1`, `precision`, `recall`) run over the labels that occur in y_true
or y_pred, as scikit-learn does by default, with 0 for an undefined per-class score.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, count, selection_rate
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score, roc_auc_score

from evaluators.engine import EvaluationError
from evaluators.engine.names import FAIRNESS_METRICS, KNOWN_METRICS

DECIMALS = 6

_macro_f1 = partial(f1_score, average="macro", zero_division=0)
_QUALITY: dict[str, Callable[..., float]] = {
    "accuracy": accuracy_score,
    "macro_f1": _macro_f1,
    "precision": partial(precision_score, average="macro", zero_division=0),
    "recall": partial(recall_score, average="macro", zero_division=0),
}


def validate_metric_names(metrics: Sequence[str]) -> None:
    unknown = [m for m in metrics if m not in KNOWN_METRICS]
    if unknown:
        raise EvaluationError(
            f"Unknown metric(s) {', '.join(repr(m) for m in unknown)}; "
            f"known metrics: {', '.join(KNOWN_METRICS)}."
        )


def compute_metrics(
    *,
    y_true: Sequence[str],
    y_pred: Sequence[str],
    scores: np.ndarray | None = None,
    labels: Sequence[str],
    sensitive: pd.DataFrame,
    metrics: Sequence[str],
    min_group_size: int,
    positive_label: str | None = None,
) -> dict[str, Any]:
    """Compute the requested metrics; an empty `metrics` means all of them.

    `labels` are the model's classes, in the column order of `scores` (class
    probabilities, optional). `sensitive` has one column per attribute, row-aligned with
    y_true. Returns a JSON-serialisable dict::

        {"labels": [...], "positive_label": str | None, "min_group_size": int,
         "overall": {"n": int, "<quality metric>": float | None, ...},
         "groups": {attr: {group: {"n", "accuracy", "macro_f1", "selection_rate"}}},
         "fairness": {attr: {"groups_compared", "excluded_groups": int, "accuracy_gap",
                             "worst_group", "best_group", "worst_group_accuracy",
                             "best_group_accuracy", "demographic_parity_difference",
                             "demographic_parity_ratio", "equalized_odds_difference",
                             "attribution": {metric: {...}}, "note"?}}}

    `selection_rate` maps every label to the share of the group predicted as that label.
    """
    validate_metric_names(metrics)
    requested = list(metrics) or list(KNOWN_METRICS)
    labels = [str(label) for label in labels]
    y_true_arr = np.asarray([str(v) for v in y_true], dtype=object)
    y_pred_arr = np.asarray([str(v) for v in y_pred], dtype=object)
    n = len(y_true_arr)
    if len(y_pred_arr) != n or len(sensitive) != n or (scores is not None and len(scores) != n):
        raise EvaluationError("y_true, y_pred, scores and sensitive must have the same length.")
    if n == 0:
        raise EvaluationError("Cannot compute metrics on an empty dataset.")
    if min_group_size < 1:
        raise EvaluationError(f"min_group_size must be at least 1, not {min_group_size}.")
    if positive_label is not None and positive_label not in labels:
        raise EvaluationError(f"positive_label {positive_label!r} is not one of the labels.")
    if scores is not None and np.shape(scores) != (n, len(labels)):
        raise EvaluationError(f"scores must have shape [{n}, {len(labels)}].")

    if positive_label is None and len(labels) == 2:
        positive_label = labels[1]
    targets = [positive_label] if positive_label is not None else labels

    overall: dict[str, Any] = {"n": n}
    for name in requested:
        if name in _QUALITY:
            overall[name] = _round(_QUALITY[name](y_true_arr, y_pred_arr))
        elif name == "roc_auc":
            overall[name] = _round(_roc_auc(y_true_arr, scores, labels))

    groups: dict[str, Any] = {}
    fairness: dict[str, Any] = {}
    wanted_fairness = [m for m in FAIRNESS_METRICS if m in requested]
    for attribute in sensitive.columns:
        features = sensitive[attribute].astype(str).to_numpy()
        table = _group_table(y_true_arr, y_pred_arr, features, labels)
        groups[str(attribute)] = {
            group: {
                "n": row["n"],
                "accuracy": _round(row["accuracy"]),
                "macro_f1": _round(row["macro_f1"]),
                "selection_rate": {label: _round(v) for label, v in row["selection_rate"].items()},
            }
            for group, row in table.items()
            if row["n"] >= min_group_size
        }
        if wanted_fairness:
            fairness[str(attribute)] = _fairness_for_attribute(
                y_true_arr, y_pred_arr, features, table, targets, min_group_size, wanted_fairness
            )

    return {
        "labels": labels,
        "positive_label": positive_label,
        "min_group_size": min_group_size,
        "overall": overall,
        "groups": groups,
        "fairness": fairness,
    }


def _roc_auc(y_true: np.ndarray, scores: np.ndarray | None, labels: list[str]) -> float | None:
    """ROC AUC, or None when there are no scores or y_true lacks a class to rank against."""
    if scores is None:
        return None
    present = set(y_true)
    if len(labels) == 2:
        if len(present) < 2:
            return None
        return roc_auc_score(y_true == labels[1], scores[:, 1])
    if present != set(labels):
        # One-vs-rest needs every class in y_true; a subset would silently change the average.
        return None
    probabilities = np.asarray(scores, dtype=np.float64)
    probabilities = probabilities / probabilities.sum(axis=1, keepdims=True)
    return roc_auc_score(y_true, probabilities, multi_class="ovr", labels=labels, average="macro")


def _group_table(
    y_true: np.ndarray, y_pred: np.ndarray, features: np.ndarray, labels: list[str]
) -> dict[str, dict[str, Any]]:
    """Per-group n, accuracy, macro-F1 and selection rate of each label (unrounded)."""
    rate_columns = {f"selection_rate:{label}": label for label in labels}
    frame = MetricFrame(
        metrics={
            "n": count,
            "accuracy": accuracy_score,
            "macro_f1": _macro_f1,
            **{
                column: partial(_share_predicted, label=label)
                for column, label in rate_columns.items()
            },
        },
        y_true=y_true,
        y_pred=y_pred,
        sensitive_features=pd.Series(features, name="group"),
    )
    table = {}
    for group, row in frame.by_group.sort_index().iterrows():
        table[str(group)] = {
            "n": int(row["n"]),
            "accuracy": float(row["accuracy"]),
            "macro_f1": float(row["macro_f1"]),
            "selection_rate": {label: float(row[col]) for col, label in rate_columns.items()},
        }
    return table


def _share_predicted(y_true: np.ndarray, y_pred: np.ndarray, *, label: str) -> float:
    return float(np.mean(y_pred == label))


def _fairness_for_attribute(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    features: np.ndarray,
    table: dict[str, dict[str, Any]],
    targets: list[str],
    min_group_size: int,
    wanted: list[str],
) -> dict[str, Any]:
    compared = [g for g, row in table.items() if row["n"] >= min_group_size]
    result: dict[str, Any] = {
        "groups_compared": compared,
        "excluded_groups": sum(1 for row in table.values() if row["n"] < min_group_size),
    }
    if len(compared) < 2:
        for metric in wanted:
            result[metric] = None
        if "accuracy_gap" in wanted:
            result.update(worst_group=None, best_group=None)
        result["note"] = (
            f"fewer than two groups have at least {min_group_size} rows, so groups cannot be "
            "compared"
        )
        return result

    if "accuracy_gap" in wanted:
        accuracies = pd.Series({g: table[g]["accuracy"] for g in compared})
        worst, best = accuracies.idxmin(), accuracies.idxmax()
        result.update(
            accuracy_gap=_round(accuracies[best] - accuracies[worst]),
            worst_group=worst,
            best_group=best,
            worst_group_accuracy=_round(accuracies[worst]),
            best_group_accuracy=_round(accuracies[best]),
        )

    rate_metrics = [m for m in wanted if m != "accuracy_gap"]
    if rate_metrics:
        keep = np.isin(features, compared)
        per_class = {
            target: _binary_rates(y_true[keep] == target, y_pred[keep] == target, features[keep])
            for target in targets
        }
        attribution: dict[str, Any] = {}
        for metric in rate_metrics:
            value, detail = _worst_over_classes(metric, per_class)
            result[metric] = _round(value)
            attribution[metric] = detail
        result["attribution"] = attribution
    return result


def _binary_rates(y_true: np.ndarray, y_pred: np.ndarray, features: np.ndarray) -> pd.DataFrame:
    """Selection rate, TPR and FPR per group for one positive class (NaN where undefined)."""
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "true_positive_rate": _rate_among(actual=True),
            "false_positive_rate": _rate_among(actual=False),
        },
        y_true=y_true.astype(int),
        y_pred=y_pred.astype(int),
        sensitive_features=pd.Series(features, name="group"),
    )
    return frame.by_group.sort_index().astype(float)


def _rate_among(*, actual: bool) -> Callable[[np.ndarray, np.ndarray], float]:
    """Share predicted positive among rows whose true value is `actual`; NaN if none."""

    def rate(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        rows = np.asarray(y_true) == int(actual)
        return float(np.mean(np.asarray(y_pred)[rows])) if rows.any() else math.nan

    return rate


def _spread(values: pd.Series) -> dict[str, Any] | None:
    defined = values.dropna()
    if len(defined) < 2:
        return None
    low, high = defined.idxmin(), defined.idxmax()
    return {
        "low_group": str(low),
        "low_value": _round(defined[low]),
        "high_group": str(high),
        "high_value": _round(defined[high]),
        "difference": float(defined[high] - defined[low]),
        "ratio": float(defined[low] / defined[high]) if defined[high] > 0 else None,
    }


def _worst_over_classes(
    metric: str, per_class: dict[str, pd.DataFrame]
) -> tuple[float | None, dict[str, Any] | None]:
    worst_value: float | None = None
    worst_detail: dict[str, Any] | None = None
    for target, rates in per_class.items():
        if metric == "equalized_odds_difference":
            candidates = [
                (spread, rate)
                for rate in ("true_positive_rate", "false_positive_rate")
                if (spread := _spread(rates[rate])) is not None
            ]
            if not candidates:
                continue
            # Ties between the two rates go to the TPR, the first listed.
            spread, rate = max(candidates, key=lambda c: c[0]["difference"])
            value = spread["difference"]
            detail = {"class": target, "rate": rate}
        else:
            spread = _spread(rates["selection_rate"])
            if spread is None:
                continue
            key = "ratio" if metric == "demographic_parity_ratio" else "difference"
            value = spread[key]
            if value is None:
                continue
            detail = {"class": target, "rate": "selection_rate"}
        better = worst_value is None or (
            value < worst_value if metric == "demographic_parity_ratio" else value > worst_value
        )
        if better:
            worst_value = value
            worst_detail = {
                **detail,
                **{k: spread[k] for k in ("low_group", "low_value", "high_group", "high_value")},
            }
    return worst_value, worst_detail


def _round(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    if math.isnan(value):
        return None
    return round(value, DECIMALS)
