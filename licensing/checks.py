"""The `licence` gate check, registered from `LicensingConfig.ready()`."""

from urllib.parse import urlencode

from django.urls import reverse

from licensing.selectors import licence_check
from registry.gates import CheckResult, GateContext

CHECK_NAME = "licence"


def licence_gate(context: GateContext) -> CheckResult:
    """Fails on any error of the active licence policy that no unexpired waiver covers; every
    reason names the rule, the licence, the path it came through, the clause and the fix."""
    check = licence_check(
        version=context.version,
        stage=context.stage,
        use=context.use,
        distribution=context.distribution,
    )
    report = reverse("version-licence-check", args=[context.version.pk])
    query = urlencode(
        {"stage": context.stage, "use": context.use, "distribution": context.distribution}
    )
    return CheckResult(
        check=CHECK_NAME,
        passed=check.passed,
        reasons=check.reasons(),
        evidence={**check.summary(), "report": f"{report}?{query}"},
    )
