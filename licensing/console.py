"""What licensing adds to the compliance console: licences and obligations in the comparison
of two versions, and the SPDX 3 document and model card in the evidence pack."""

from typing import Any

from licensing.exports import version_export
from licensing.selectors import version_obligations
from registry.models import ModelVersion
from registry.plugins import ComparisonSection, EvidenceDocument
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


CONTRIBUTIONS = (
    ComparisonSection("Licences and obligations", licence_facts),
    EvidenceDocument("spdx-3.0.json", _export("spdx-3.0")),
    EvidenceDocument("model-card.md", _export("model-card")),
)
