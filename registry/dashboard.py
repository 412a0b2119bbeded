"""The compliance dashboard (admin index), with the panels other apps register."""

from collections import Counter
from typing import Any

from django.http import HttpRequest

from registry.gates import failing_checks
from registry.models import GateDecision, ModelVersion, Stage
from registry.plugins import DashboardPanel, plugins


def dashboard_context(request: HttpRequest) -> dict[str, Any]:
    """A bounded number of queries whatever the registry size (recent decisions only)."""
    recent = GateDecision.objects.select_related("version", "version__model").order_by(
        "-decided_at", "-id"
    )[:500]
    latest: dict[int, GateDecision] = {}
    for decision in recent:
        latest.setdefault(decision.version_id, decision)
    blocked: list[dict[str, Any]] = [
        {"decision": d, "version": d.version, "failing": failing_checks(d.results)}
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
            for panel in plugins.contributions(DashboardPanel)
        ],
    }
