"""What licensing adds to the compliance console: licences and obligations in the comparison
of two versions, and the SPDX 3 document and model card in the evidence pack."""

from datetime import datetime
from typing import Any

from django.db.models import F
from django.urls import reverse

from licensing.exports import version_export
from licensing.models import LicenceWaiver
from licensing.selectors import version_obligations
from registry.models import ModelVersion
from registry.plugins import ComparisonSection, EvidenceDocument, Expiring, ExpiringProvider
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


CONTRIBUTIONS = (
    ExpiringProvider("licence waivers", expiring_waivers),
    ComparisonSection("Licences and obligations", licence_facts),
    EvidenceDocument("spdx-3.0.json", _export("spdx-3.0")),
    EvidenceDocument("model-card.md", _export("model-card")),
)
