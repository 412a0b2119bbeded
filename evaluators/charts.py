"""Per-group results as server-side SVG bar charts (no JavaScript, no CDN).

The geometry is computed here; `templates/evaluators/group_chart.svg` draws it, and the
template engine escapes group names.
"""

from dataclasses import dataclass, field
from typing import Any

LABEL_WIDTH = 170
BAR_WIDTH = 300
VALUE_WIDTH = 150
ROW_HEIGHT = 34
TOP = 34
BOTTOM = 26


@dataclass(frozen=True)
class Bar:
    label: str
    n: int
    y: int
    accuracy: float | None
    accuracy_width: float
    selection: float | None
    selection_width: float
    worst: bool


@dataclass(frozen=True)
class GroupChart:
    attribute: str
    title: str
    bars: list[Bar]
    width: int
    height: int
    bar_x: int
    bar_width: int
    value_x: int
    ticks: list[dict[str, Any]] = field(default_factory=list)
    positive_label: str | None = None


def _width(value: float | None) -> float:
    return round(max(0.0, min(1.0, value or 0.0)) * BAR_WIDTH, 1)


def group_charts(metrics: dict[str, Any]) -> list[GroupChart]:
    """One chart per sensitive attribute: each group's accuracy (and, with a positive label,
    how often it is selected); groups under the minimum size are not in the metrics at all."""
    positive = metrics.get("positive_label")
    charts = []
    for attribute, groups in sorted((metrics.get("groups") or {}).items()):
        fairness = (metrics.get("fairness") or {}).get(attribute, {})
        worst = fairness.get("worst_group")
        bars = []
        for index, (group, row) in enumerate(sorted(groups.items())):
            selection = (row.get("selection_rate") or {}).get(positive) if positive else None
            bars.append(
                Bar(
                    label=group,
                    n=row.get("n", 0),
                    y=TOP + index * ROW_HEIGHT,
                    accuracy=row.get("accuracy"),
                    accuracy_width=_width(row.get("accuracy")),
                    selection=selection,
                    selection_width=_width(selection),
                    worst=group == worst and fairness.get("accuracy_gap") not in (None, 0),
                )
            )
        gap = fairness.get("accuracy_gap")
        title = f"Accuracy by {attribute}" + (f" (gap {gap:.3f})" if gap is not None else "")
        height = TOP + len(bars) * ROW_HEIGHT + BOTTOM
        charts.append(
            GroupChart(
                attribute=attribute,
                title=title,
                bars=bars,
                width=LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH,
                height=height,
                bar_x=LABEL_WIDTH,
                bar_width=BAR_WIDTH,
                value_x=LABEL_WIDTH + BAR_WIDTH + 8,
                ticks=[
                    {"x": LABEL_WIDTH + BAR_WIDTH * step / 4, "label": f"{step / 4:.2f}"}
                    for step in range(5)
                ],
                positive_label=positive,
            )
        )
    return charts
