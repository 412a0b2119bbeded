"""Exports of a version and its lineage: SPDX 2.3 JSON, SPDX 3.0.1 JSON-LD (AI and Dataset
profiles) and a Hugging Face model card."""

from dataclasses import dataclass
from typing import Any

from licensing.exports.bundle import export_bundle
from licensing.exports.model_card import card_text
from licensing.exports.spdx2 import spdx23_json
from licensing.exports.spdx3 import spdx30_json
from licensing.selectors import version_obligations
from registry.models import ModelVersion


@dataclass(frozen=True)
class ExportFormat:
    name: str
    content_type: str
    suffix: str

    def filename(self, version: ModelVersion) -> str:
        stem = f"{version.model.name}-{version.version}".replace("/", "_")
        return f"{stem}{self.suffix}"


FORMATS = {
    "spdx-2.3": ExportFormat("spdx-2.3", "application/spdx+json", ".spdx.json"),
    "spdx-3.0": ExportFormat("spdx-3.0", "application/ld+json", ".spdx3.jsonld"),
    "model-card": ExportFormat("model-card", "text/markdown; charset=utf-8", ".README.md"),
}


def version_export(*, user, version: ModelVersion, format: str) -> str:
    """The document for `version` and its lineage, as text, in one of FORMATS."""
    bundle = export_bundle(user, version)
    if format == "spdx-2.3":
        return spdx23_json(bundle)
    if format == "spdx-3.0":
        return spdx30_json(bundle)
    if format == "model-card":
        return card_text(bundle, version_obligations(version, user))
    raise ValueError(f"unknown export format {format!r}; one of {', '.join(FORMATS)}")


__all__: list[Any] = ["FORMATS", "ExportFormat", "version_export"]
