"""What licensing adds to the compliance console: licences and obligations in the comparison
of two versions, the SPDX 3 document and model card in the evidence pack, licence waivers
lapsing soon on the dashboard, and waiving a licence rule from the version's banner."""

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import F
from django.urls import reverse
from django.utils import timezone

from licensing.checks import CHECK_NAME
from licensing.exports import version_export
from licensing.models import LicenceWaiver
from licensing.selectors import version_obligations
from registry.admin_base import EXPIRY_FORMAT, WAIVER_DEFAULT_DAYS
from registry.gates import GateEvaluation
from registry.models import ModelVersion
from registry.plugins import (
    ComparisonSection,
    EvidenceDocument,
    Expiring,
    ExpiringProvider,
    WaiverLinks,
)
from registry.selectors import OVERVIEW_LIMIT
from registry.types import Reader


def licence_facts(reader: Reader, version: ModelVersion) -> dict[str, Any]:
    """Each licence that binds the version (its own, its ancestors', its data's), and each
    obligation it inherits, with where it comes from."""
    found = version_obligations(version)
    facts: dict[str, Any] = {
        f"licence of {source.kind} {source.ref}": source.expression or "none recorded"
        for source in found.sources
    }
    for obligation in found.obligations:
        label = f"obligation: {obligation.term.type} ({obligation.licence.id})"
        facts[label] = f"from {obligation.source.ref}"
    return facts


def _export(format: str):
    def render(reader: Reader, version: ModelVersion) -> str:
        return version_export(user=reader, version=version, format=format)

    return render


def expiring_waivers(before: datetime) -> list[Expiring]:
    """Licence waivers in force on the version's current weights that lapse before `before`."""
    waivers = (
        LicenceWaiver.objects.filter(
            revoked_at__isnull=True,
            expires_at__lte=before,
            artefact_digest=F("version__artefact_digest"),
        )
        .select_related("version__model", "approver")
        .order_by("expires_at")[:OVERVIEW_LIMIT]
    )
    return [
        Expiring(
            f"licence waiver of {waiver.rule_name}"
            + (f" ({waiver.licence_id})" if waiver.licence_id else ""),
            waiver.version,
            waiver.expires_at,
            f"approved by {waiver.approver}; resolve the licence violation or grant a new waiver",
            reverse("admin:licensing_licencewaiver_change", args=[waiver.pk]),
        )
        for waiver in waivers
    ]


def licence_waive_links(evaluation: GateEvaluation, row: dict[str, Any]) -> list[tuple[str, str]]:
    """One licence waiver per blocking violation of the licence check, the form pre-filled from
    it: the version, the rule, the licence, the reason to complete and the usual lifetime."""
    expires = timezone.now() + timedelta(days=WAIVER_DEFAULT_DAYS)
    add = reverse("admin:licensing_licencewaiver_add")
    links = []
    for violation in (row.get("evidence") or {}).get("violations", []):
        if violation.get("severity") != "error" or violation.get("waived"):
            continue
        query = urlencode(
            {
                "version": evaluation.version_id,
                "rule_name": violation["rule"],
                "licence_id": violation.get("licence") or "",
                "reason": f"Accepted risk: {violation.get('message', '')} Because ",
                "expires_at": expires.strftime(EXPIRY_FORMAT),
            }
        )
        label = f"Waive {violation['rule']}" + (
            f" ({violation['licence']})…" if violation.get("licence") else "…"
        )
        if (label, f"{add}?{query}") not in links:
            links.append((label, f"{add}?{query}"))
    return links


CONTRIBUTIONS = (
    WaiverLinks(CHECK_NAME, licence_waive_links),
    ExpiringProvider("licence waivers", expiring_waivers),
    ComparisonSection("Licences and obligations", licence_facts),
    EvidenceDocument("spdx-3.0.json", _export("spdx-3.0")),
    EvidenceDocument("model-card.md", _export("model-card")),
)
