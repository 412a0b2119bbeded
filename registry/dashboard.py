"""The compliance dashboard (admin index) and its plug-in point for panels from other apps."""

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from registry.models import GateDecision, ModelVersion, Stage


@dataclass(frozen=True)
class Panel:
    title: str
    template: str
    context: Callable[[Any], dict[str, Any]]  # request → template context


_PANELS: list[Panel] = []


def register_panel(panel: Panel) -> None:
    """Apps add dashboard panels from `AppConfig.ready()` (registry never imports them)."""
    if all(existing.title != panel.title for existing in _PANELS):
        _PANELS.append(panel)


def _failing(decision: GateDecision) -> list[dict[str, Any]]:
    return [
        result
        for result in decision.results
        if result["required"] and not result["passed"] and not result.get("waiver")
    ]


def dashboard_context(request) -> dict[str, Any]:
    """A bounded number of queries whatever the registry size (recent decisions only)."""
    recent = GateDecision.objects.select_related("version", "version__model").order_by(
        "-decided_at", "-id"
    )[:500]
    latest: dict[int, GateDecision] = {}
    for decision in recent:
        latest.setdefault(decision.version_id, decision)
    blocked = [
        {"decision": d, "version": d.version, "failing": _failing(d)}
        for d in latest.values()
        if not d.passed and d.version.stage == d.from_stage
    ]
    awaiting = [
        row for row in blocked if any(check["check"] == "approvals" for check in row["failing"])
    ]
    production = ModelVersion.objects.filter(stage=Stage.PRODUCTION).values_list(
        "risk_tier", flat=True
    )
    by_tier = Counter(production)
    return {
        "blocked_versions": blocked,
        "awaiting_approval": awaiting,
        "production_by_risk_tier": sorted(by_tier.items()),
        "production_count": sum(by_tier.values()),
        "stage_counts": dict(Counter(ModelVersion.objects.values_list("stage", flat=True))),
        "panels": [
            {"title": panel.title, "template": panel.template, "context": panel.context(request)}
            for panel in _PANELS
        ],
    }
