"""The compliance dashboard (admin index), with the panels other apps register."""

from collections import Counter
from typing import Any

from django.http import HttpRequest

from registry.models import ModelVersion, Stage
from registry.plugins import DashboardPanel, plugins
from registry.selectors import compliance_overview, compliance_stale_ids
from registry.services import compliance_recheck


def dashboard_context(request: HttpRequest) -> dict[str, Any]:
    """A bounded number of queries whatever the registry size: the lists come from the stored
    compliance statuses (`registry.selectors.compliance_overview`)."""
    # What no write rechecked (a new registration) or beat has not reached yet (the embedded
    # default has no beat) is recomputed on opening, a bounded number of versions at a time.
    compliance_recheck(version_ids=compliance_stale_ids())
    overview = compliance_overview()
    production = ModelVersion.objects.filter(stage=Stage.PRODUCTION).values_list(
        "risk_tier", flat=True
    )
    by_tier = Counter(production)
    return {
        **overview,
        "compliance_lists": [
            ("Out of compliance", "out-of-compliance", overview["out_of_compliance"]),
            ("Held", "held", overview["held"]),
            ("Blocked versions", "blocked-versions", overview["blocked"]),
            ("Awaiting approval", "awaiting-approval", overview["awaiting_approval"]),
            ("Never gated", "never-gated", overview["never_gated"]),
        ],
        "production_by_risk_tier": sorted(by_tier.items()),
        "production_count": sum(by_tier.values()),
        "stage_counts": dict(Counter(ModelVersion.objects.values_list("stage", flat=True))),
        "panels": [
            {"title": panel.title, "template": panel.template, "context": panel.context(request)}
            for panel in plugins.contributions(DashboardPanel)
        ],
    }
