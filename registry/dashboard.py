"""The compliance dashboard (admin index), with the panels other apps register."""

from typing import Any

from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest

from registry.console import expiring_evidence
from registry.models import ModelVersion, RiskTier, Stage
from registry.plugins import DashboardPanel, plugins
from registry.selectors import (
    OVERVIEW_LIMIT,
    compliance_overview,
    compliance_stale_ids,
    pending_proposals,
)
from registry.services import compliance_recheck


def stage_tier_counts() -> dict[str, Any]:
    """Versions per risk tier (rows) and stage (columns), with totals. One query."""
    counts = {
        (row["risk_tier"], row["stage"]): row["n"]
        for row in ModelVersion.objects.order_by()
        .values("risk_tier", "stage")
        .annotate(n=Count("pk"))
    }
    stages = list(Stage.values)
    return {
        "stages": stages,
        "rows": [
            (tier, [counts.get((tier, stage), 0) for stage in stages]) for tier in RiskTier.values
        ],
        "totals": [
            sum(counts.get((tier, stage), 0) for tier in RiskTier.values) for stage in stages
        ],
    }


def dashboard_context(request: HttpRequest) -> dict[str, Any]:
    """A bounded number of queries whatever the registry size: the lists come from the stored
    compliance statuses (`registry.selectors.compliance_overview`) and the expiring evidence."""
    # What no write rechecked (a new registration) or beat has not reached yet (the embedded
    # default has no beat) is recomputed on opening, a bounded number of versions at a time.
    compliance_recheck(version_ids=compliance_stale_ids())
    overview = compliance_overview()
    counts = stage_tier_counts()
    return {
        **overview,
        "compliance_lists": [
            ("Out of compliance", "out-of-compliance", overview["out_of_compliance"]),
            ("Held", "held", overview["held"]),
            ("Blocked versions", "blocked-versions", overview["blocked"]),
            ("Never gated", "never-gated", overview["never_gated"]),
        ],
        # Engineers' changes to protected evidence, waiting for a compliance conclusion.
        "proposals_pending": list(pending_proposals(request.user)[:OVERVIEW_LIMIT]),
        "expiring": expiring_evidence(),
        "expiry_days": settings.PEDIGREE_EXPIRY_WARNING_DAYS,
        "counts": counts,
        "production_count": counts["totals"][counts["stages"].index(Stage.PRODUCTION)],
        "panels": [
            {"title": panel.title, "template": panel.template, "context": panel.context(request)}
            for panel in plugins.contributions(DashboardPanel)
        ],
    }
