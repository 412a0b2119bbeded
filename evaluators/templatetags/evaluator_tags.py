"""`{% evaluations_panel version %}`: a version's evidence per applicable suite and its latest
runs, for the version's admin page (registry's template loads it; registry imports nothing)."""

from django import template

from evaluators.models import EvaluationRun
from evaluators.selectors import evaluation_evidence, run_findings

register = template.Library()


@register.inclusion_tag("evaluators/version_panel.html")
def evaluations_panel(version) -> dict:
    evidence = [
        {"item": item, "findings": run_findings(item.run) if item.run else []}
        for item in evaluation_evidence(version)
    ]
    runs = (
        EvaluationRun.objects.filter(version=version)
        .select_related("suite")
        .order_by("-requested_at", "-id")[:10]
    )
    return {"version": version, "evidence": evidence, "runs": runs}
