"""SPDX 2.3 JSON: one package per model version and training/test dataset version, built with
spdx-tools' model, validated with its full-document validator, written with its JSON writer.

SPDX 2.3 has no AI relationship types: a derivation is `DESCENDANT_OF` (its relation in the
comment), training and validation data `GENERATED_FROM`, test data `TEST_OF`.
"""

from __future__ import annotations

import io

from license_expression import LicenseExpression
from spdx_tools.common.spdx_licensing import spdx_licensing
from spdx_tools.spdx.model import (
    Actor,
    ActorType,
    Checksum,
    ChecksumAlgorithm,
    CreationInfo,
    Document,
    ExternalPackageRef,
    ExternalPackageRefCategory,
    ExtractedLicensingInfo,
    Package,
    PackagePurpose,
    Relationship,
    RelationshipType,
    SpdxNoAssertion,
)
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document
from spdx_tools.spdx.writer.json.json_writer import write_document_to_stream

from licensing.exports.bundle import (
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


class ExportInvalid(RuntimeError):
    """The generated document failed validation: a defect in the exporter, never user input."""


def model_spdx_id(version_id: int) -> str:
    return f"SPDXRef-Model-{version_id}"


def dataset_spdx_id(dataset_version_id: int) -> str:
    return f"SPDXRef-Dataset-{dataset_version_id}"


def _licence(text: str) -> LicenseExpression | SpdxNoAssertion:
    return spdx_licensing.parse(text) if text and text != NO_ASSERTION else SpdxNoAssertion()


def _model_package(bundle: ExportBundle, version: ModelVersion) -> Package:
    visible = version.pk in bundle.visible_versions
    location = hub_url(version) if visible else None
    references = []
    if visible and version.hub_repo_id and version.hub_revision:
        references.append(
            ExternalPackageRef(
                ExternalPackageRefCategory.PACKAGE_MANAGER,
                "purl",
                f"pkg:huggingface/{version.hub_repo_id}@{version.hub_revision}",
            )
        )
    return Package(
        spdx_id=model_spdx_id(version.pk),
        name=version.model.name if visible else bundle.version_label(version),
        version=version.version if visible else None,
        download_location=location or SpdxNoAssertion(),
        supplier=Actor(ActorType.ORGANIZATION, version.model.team.name) if visible else None,
        files_analyzed=False,
        checksums=(
            [Checksum(ChecksumAlgorithm.SHA256, version.artefact_digest)]
            if visible and not version.unresolved
            else []
        ),
        license_concluded=_licence(version.licence_concluded),
        license_declared=_licence(version.licence_declared),
        copyright_text=SpdxNoAssertion(),
        summary=f"Machine-learning model ({version.model.get_kind_display().lower()})"
        + (UNRESOLVED_NOTE if version.unresolved else ""),
        description=(version.description or None) if visible else None,
        comment=(
            f"Risk tier: {version.risk_tier}. Intended use: {version.intended_use}"
            if visible and version.intended_use
            else None
        ),
        external_references=references,
        primary_package_purpose=PackagePurpose.OTHER,
        release_date=version.registered_at.replace(microsecond=0) if visible else None,
    )


def _dataset_package(bundle: ExportBundle, dataset_version: DatasetVersion) -> Package:
    visible = dataset_version.pk in bundle.visible_datasets
    location = dataset_hub_url(dataset_version) if visible else None
    return Package(
        spdx_id=dataset_spdx_id(dataset_version.pk),
        name=dataset_version.dataset.name if visible else bundle.dataset_label(dataset_version),
        version=dataset_version.version if visible else None,
        download_location=location or SpdxNoAssertion(),
        supplier=(
            Actor(ActorType.ORGANIZATION, dataset_version.dataset.team.name) if visible else None
        ),
        files_analyzed=False,
        # A Hub dataset reference has no files, hence no checksum.
        checksums=(
            [Checksum(ChecksumAlgorithm.SHA256, dataset_version.sha256)]
            if visible and not dataset_version.reference
            else []
        ),
        license_concluded=_licence(dataset_version.licence_concluded),
        license_declared=_licence(dataset_version.licence_declared),
        copyright_text=SpdxNoAssertion(),
        summary="Dataset",
        primary_package_purpose=PackagePurpose.OTHER,
    )


def _extracted_licences(bundle: ExportBundle, used: set[str]) -> list[ExtractedLicensingInfo]:
    infos = []
    for licence_id in sorted(used):
        licence = bundle.licences.get(licence_id)
        if licence is None or not licence_id.startswith("LicenseRef-"):
            continue
        terms = "; ".join(f"{term.type} ({term.clause})" for term in licence.terms)
        infos.append(
            ExtractedLicensingInfo(
                license_id=licence_id,
                license_name=licence.name,
                extracted_text=(
                    f"{licence.name}. The licence text is published at {licence.url}."
                    + (f" Terms recorded by Pedigree: {terms}." if terms else "")
                ),
                cross_references=[licence.url],
                comment=f"Category: {licence.category}.",
            )
        )
    return infos


def _pinned_digest(bundle: ExportBundle, edge) -> str:
    if not edge.parent_digest:
        return "none (unresolved)"
    # A parent the reader cannot see keeps its relation, not its weights' digest.
    if edge.parent_id not in bundle.visible_versions:
        return "not visible to you"
    return f"sha256:{edge.parent_digest}"


def spdx23_document(bundle: ExportBundle) -> Document:
    version = bundle.version
    packages = [_model_package(bundle, row) for _, row in sorted(bundle.versions.items())]
    packages += [
        _dataset_package(bundle, row) for _, row in sorted(bundle.dataset_versions.items())
    ]
    relationships = [
        Relationship("SPDXRef-DOCUMENT", RelationshipType.DESCRIBES, model_spdx_id(version.pk))
    ]
    for edge in bundle.edges:
        relationships.append(
            Relationship(
                model_spdx_id(edge.child_id),
                RelationshipType.DESCENDANT_OF,
                model_spdx_id(edge.parent_id),
                comment=f"{edge.relation}; parent digest " + _pinned_digest(bundle, edge),
            )
        )
    for use in bundle.uses:
        model, data = model_spdx_id(use.user_version_id), dataset_spdx_id(use.dataset_version_id)
        if use.role == DatasetRole.TEST:
            relationships.append(
                Relationship(data, RelationshipType.TEST_OF, model, comment="testedOn")
            )
        else:
            relationships.append(
                Relationship(
                    model,
                    RelationshipType.GENERATED_FROM,
                    data,
                    comment=f"trainedOn ({use.role}"
                    + (", declared by the upstream model card)" if use.declared else ")"),
                )
            )
    used = {
        symbol.key
        for package in packages
        for expression in (package.license_concluded, package.license_declared)
        if isinstance(expression, LicenseExpression)
        for symbol in spdx_licensing.license_symbols(expression, decompose=True)
    }
    document = Document(
        creation_info=CreationInfo(
            spdx_version="SPDX-2.3",
            spdx_id="SPDXRef-DOCUMENT",
            name=f"AI-BOM of {bundle.version_label(version)}",
            document_namespace=bundle.namespace(),
            creators=[
                Actor(ActorType.TOOL, f"{TOOL_NAME}-{TOOL_VERSION}"),
                Actor(ActorType.ORGANIZATION, version.model.team.name),
            ],
            created=bundle.created.replace(microsecond=0),
            creator_comment=(
                "Model lineage and training data exported by Pedigree. Packages are model "
                "versions (SPDXRef-Model-*) and dataset versions (SPDXRef-Dataset-*)."
            ),
        ),
        packages=packages,
        relationships=relationships,
        extracted_licensing_info=_extracted_licences(bundle, used),
    )
    problems = validate_full_spdx_document(document)
    if problems:
        raise ExportInvalid(
            "The SPDX 2.3 document failed validation: "
            + "; ".join(problem.validation_message for problem in problems)
        )
    return document


def spdx23_json(bundle: ExportBundle) -> str:
    stream = io.StringIO()
    write_document_to_stream(spdx23_document(bundle), stream, validate=False)
    return stream.getvalue()
