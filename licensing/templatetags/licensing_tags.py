"""`{% licence_panel version %}`: obligations and the licence check on an admin page.

The context (stage, use, distribution) comes from the page's query string when it names one
(the governance page does), else production, commercial, hosted: the strictest common case.
"""

from django import template
from django.urls import reverse

from licensing.selectors import licence_check
from registry.gates import DISTRIBUTIONS, USES

register = template.Library()

STAGES = ("development", "staging", "production")


def _param(request, name: str, allowed, default: str) -> str:
    value = request.GET.get(name, default) if request is not None else default
    return value if value in allowed else default


@register.inclusion_tag("licensing/version_panel.html", takes_context=True)
def licence_panel(context, version) -> dict:
    request = context.get("request")
    check = licence_check(
        version=version,
        stage=_param(request, "stage", STAGES, "production"),
        use=_param(request, "use", USES, "commercial"),
        distribution=_param(request, "distribution", DISTRIBUTIONS, "hosted"),
    )
    return {
        "version": version,
        "check": check,
        "violations": [violation.to_dict() for violation in check.violations],
        "obligations": [obligation.to_dict() for obligation in check.obligations],
        "choices": [choice.to_dict() for choice in check.choices],
        "check_url": reverse("version-licence-check", args=[version.pk]),
        "obligations_url": reverse("version-obligations", args=[version.pk]),
        "waiver_url": reverse("admin:licensing_licencewaiver_add") + f"?version={version.pk}",
    }
