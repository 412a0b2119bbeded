"""SPDX 3.0.1 JSON-LD with the AI and Dataset profiles.

spdx-tools 0.8's `spdx3` model predates SPDX 3.0.1 (pre-release namespaces such as
`https://spdx.org/rdf/AI/`, dict-valued hyperparameters, relationship types like ANCESTOR),
so the document is built here following the 3.0.1 vocabulary: an `ai_AIPackage` per model
version (hyperparameters, metrics, limitation, domain, safety risk assessment...), a
`dataset_DatasetPackage` per dataset version, and `descendantOf`/`ancestorOf`, `trainedOn`,
`testedOn`, `hasDeclaredLicense`/`hasConcludedLicense` relationships.

The `@context` is the published one, by URL, as the official SPDX 3 bindings
(spdx-python-model) require; they recognise it by its URL and never fetch it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from licensing.exports.bundle import (
    RISK_TO_SAFETY,
    TOOL_NAME,
    TOOL_VERSION,
    UNRESOLVED_NOTE,
    ExportBundle,
    dataset_hub_url,
    hub_url,
)
from licensing.validation import NO_ASSERTION
from lineage.models import DatasetRole
from registry.models import DatasetVersion, ModelVersion

SPEC_VERSION = "3.0.1"
CREATION_INFO = "_:creationinfo"
CONTEXT_URL = f"https://spdx.org/rdf/{SPEC_VERSION}/spdx-context.jsonld"


def _timestamp(value) -> str:
    return value.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _entries(mapping: dict[str, Any]) -> list[dict[str, str]]:
    entries = []
    for key, value in sorted(mapping.items()):
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
        entries.append({"type": "DictionaryEntry", "key": str(key), "value": text})
    return entries


class _Builder:
    def __init__(self, bundle: ExportBundle) -> None:
        self.bundle = bundle
        self.base = bundle.namespace()
        self.graph: list[dict[str, Any]] = []
        self.elements: list[str] = []
        self.counter = 0
        self.agents: dict[str, str] = {}
        self.expressions: dict[str, str] = {}

    def iri(self, local: str) -> str:
        return f"{self.base}/{local}"

    def add(self, element: dict[str, Any]) -> str:
        element.setdefault("creationInfo", CREATION_INFO)
        self.graph.append(element)
        self.elements.append(element["spdxId"])
        return element["spdxId"]

    def relationship(self, source: str, kind: str, targets: list[str], comment: str = "") -> None:
        self.counter += 1
        element = {
            "type": "Relationship",
            "spdxId": self.iri(f"relationship-{self.counter}"),
            "from": source,
            "to": targets,
            "relationshipType": kind,
        }
        if comment:
            element["comment"] = comment
        self.add(element)

    def organisation(self, name: str) -> str:
        if name not in self.agents:
            self.agents[name] = self.add(
                {
                    "type": "Organization",
                    "spdxId": self.iri(f"agent-{len(self.agents) + 1}"),
                    "name": name,
                }
            )
        return self.agents[name]

    def expression(self, text: str) -> str:
        if text not in self.expressions:
            element: dict[str, Any] = {
                "type": "simplelicensing_LicenseExpression",
                "spdxId": self.iri(f"licence-expression-{len(self.expressions) + 1}"),
                "simplelicensing_licenseExpression": text,
            }
            refs = {
                licence.id: licence.url
                for licence in self.bundle.licences.values()
                if licence.id.startswith("LicenseRef-") and licence.id in text
            }
            if refs:
                element["simplelicensing_customIdToUri"] = _entries(refs)
            self.expressions[text] = self.add(element)
        return self.expressions[text]

    def licences(self, package: str, obj: ModelVersion | DatasetVersion) -> None:
        # NOASSERTION is SPDX 3's absence of the relationship, not an expression.
        if obj.licence_declared and obj.licence_declared != NO_ASSERTION:
            self.relationship(
                package, "hasDeclaredLicense", [self.expression(obj.licence_declared)]
            )
        if obj.licence_concluded:
            self.relationship(
                package, "hasConcludedLicense", [self.expression(obj.licence_concluded)]
            )

    def model(self, version: ModelVersion) -> str:
        bundle = self.bundle
        element: dict[str, Any] = {
            "type": "ai_AIPackage",
            "spdxId": self.iri(f"model-{version.pk}"),
            "name": bundle.version_label(version),
            "software_primaryPurpose": "model",
        }
        if version.pk not in bundle.visible_versions:
            return self.add(element)
        run = bundle.runs.get(version.pk)
        element |= {
            "name": version.model.name,
            "software_packageVersion": version.version,
            "suppliedBy": self.organisation(version.model.team.name),
            "releaseTime": _timestamp(version.registered_at),
            "ai_safetyRiskAssessment": RISK_TO_SAFETY[version.risk_tier],
            "ai_useSensitivePersonalInformation": (
                "yes" if version.uses_sensitive_personal_data else "no"
            ),
        }
        if version.unresolved:
            element["summary"] = "Unresolved upstream reference" + UNRESOLVED_NOTE
        else:
            element["verifiedUsing"] = [
                {"type": "Hash", "algorithm": "sha256", "hashValue": version.artefact_digest}
            ]
        optional: dict[str, Any] = {
            "description": version.description,
            "software_downloadLocation": hub_url(version),
            "software_packageUrl": (
                f"pkg:huggingface/{version.hub_repo_id}@{version.hub_revision}"
                if version.hub_repo_id and version.hub_revision
                else None
            ),
            "ai_limitation": version.known_limitations,
            "ai_domain": [version.domain] if version.domain else None,
            "ai_typeOfModel": [version.model.task] if version.model.task else None,
            "ai_informationAboutApplication": version.intended_use,
        }
        if run is not None:
            optional["ai_hyperparameter"] = _entries(run.hyperparameters) or None
            optional["ai_informationAboutTraining"] = (
                f"{run.get_method_display()}"
                + (
                    f" with code {run.code_repository}@{run.code_revision}"
                    if run.code_revision
                    else ""
                )
                + (f" on {run.device_count or 1} x {run.device_kind}" if run.device_kind else "")
                + (f", {run.gpu_hours} GPU hours" if run.gpu_hours is not None else "")
            )
            if run.energy_kwh is not None:
                optional["ai_energyConsumption"] = {
                    "type": "ai_EnergyConsumption",
                    "ai_trainingEnergyConsumption": [
                        {
                            "type": "ai_EnergyConsumptionDescription",
                            "ai_energyQuantity": str(run.energy_kwh),
                            "ai_energyUnit": "kilowattHour",
                        }
                    ],
                }
        if version.pk == bundle.version.pk and bundle.results:
            optional["ai_metric"] = _entries(
                {
                    f"{result['metric']} ({result.get('dataset', '')}"
                    f"{'/' + result['split'] if result.get('split') else ''})": str(result["value"])
                    for result in bundle.results
                }
            )
        element |= {key: value for key, value in optional.items() if value}
        return self.add(element)

    def dataset(self, dataset_version: DatasetVersion) -> str:
        bundle = self.bundle
        element: dict[str, Any] = {
            "type": "dataset_DatasetPackage",
            "spdxId": self.iri(f"dataset-{dataset_version.pk}"),
            "name": bundle.dataset_label(dataset_version),
            "software_primaryPurpose": "data",
            "dataset_datasetType": ["noAssertion"],
        }
        if dataset_version.pk not in bundle.visible_datasets:
            return self.add(element)
        dataset = dataset_version.dataset
        element |= {
            "name": dataset.name,
            "software_packageVersion": dataset_version.version,
            "suppliedBy": self.organisation(dataset.team.name),
            "releaseTime": _timestamp(dataset_version.registered_at),
            "dataset_hasSensitivePersonalInformation": (
                "noAssertion"
                if dataset_version.reference
                else "yes"
                if dataset_version.contains_personal_data
                else "no"
            ),
        }
        if not dataset_version.reference:  # a Hub dataset reference has no files to hash
            element |= {
                "verifiedUsing": [
                    {"type": "Hash", "algorithm": "sha256", "hashValue": dataset_version.sha256}
                ],
                "dataset_datasetSize": dataset_version.size_bytes,
            }
        optional = {
            "description": dataset.description,
            "software_downloadLocation": dataset_hub_url(dataset_version),
            "dataset_intendedUse": dataset_version.intended_use,
            "dataset_knownBias": [dataset_version.known_biases]
            if dataset_version.known_biases
            else None,
        }
        element |= {key: value for key, value in optional.items() if value}
        return self.add(element)


def spdx30_document(bundle: ExportBundle) -> dict[str, Any]:
    builder = _Builder(bundle)
    tool = builder.add(
        {"type": "Tool", "spdxId": builder.iri("tool"), "name": f"{TOOL_NAME} {TOOL_VERSION}"}
    )
    team = builder.organisation(bundle.version.model.team.name)
    creation_info = {
        "type": "CreationInfo",
        "@id": CREATION_INFO,
        "specVersion": SPEC_VERSION,
        "created": _timestamp(bundle.created),
        "createdBy": [team],
        "createdUsing": [tool],
    }
    models = {pk: builder.model(version) for pk, version in sorted(bundle.versions.items())}
    datasets = {pk: builder.dataset(row) for pk, row in sorted(bundle.dataset_versions.items())}
    for pk, version in sorted(bundle.versions.items()):
        builder.licences(models[pk], version)
    for pk, row in sorted(bundle.dataset_versions.items()):
        builder.licences(datasets[pk], row)
    children: dict[int, list[int]] = defaultdict(list)
    for child_id in sorted({edge.child_id for edge in bundle.edges}):
        edges = bundle.parents_of(child_id)
        builder.relationship(
            models[child_id],
            "descendantOf",
            [models[edge.parent_id] for edge in edges],
            comment="; ".join(
                f"{edge.relation} of {bundle.version_label(bundle.versions[edge.parent_id])}"
                for edge in edges
            ),
        )
        for edge in edges:
            children[edge.parent_id].append(child_id)
    for parent_id, child_ids in sorted(children.items()):
        builder.relationship(models[parent_id], "ancestorOf", [models[c] for c in child_ids])
    for pk in sorted(bundle.versions):
        trained = bundle.trained_on(pk)
        if trained:
            builder.relationship(
                models[pk],
                "trainedOn",
                [datasets[use.dataset_version_id] for use in trained],
                comment=", ".join(
                    f"{bundle.dataset_label(u.dataset_version)} ({u.role})" for u in trained
                ),
            )
        tested = bundle.uses_of(pk, (DatasetRole.TEST,))
        if tested:
            builder.relationship(
                models[pk], "testedOn", [datasets[use.dataset_version_id] for use in tested]
            )
    data_licence = builder.expression("CC0-1.0")
    document = {
        "type": "SpdxDocument",
        "spdxId": builder.iri("document"),
        "creationInfo": CREATION_INFO,
        "name": f"AI-BOM of {bundle.version_label(bundle.version)}",
        "profileConformance": ["core", "software", "ai", "dataset", "simpleLicensing"],
        "dataLicense": data_licence,
        "rootElement": [models[bundle.version.pk]],
        "element": list(builder.elements),
    }
    return {"@context": CONTEXT_URL, "@graph": [creation_info, document, *builder.graph]}


def spdx30_json(bundle: ExportBundle) -> str:
    return json.dumps(spdx30_document(bundle), indent=2, ensure_ascii=False)
