"""What every export describes: a version, its ancestors, their edges, runs and datasets.

Fetched in a fixed number of queries whatever the depth of the lineage. Ancestors and datasets
the requesting user may not see are kept (their licences still bind the version) but
described without name, digest or location.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from licensing.obligations import LicenceInfo, base_licence_id, expression_alternatives
from licensing.selectors import licence_infos
from lineage.models import (
    DataLink,
    DatasetRole,
    LineageEdge,
    TrainingDataset,
    TrainingRun,
    UpstreamTrainingData,
)
from lineage.selectors import TRAINED_ON_ROLES, ancestor_ids
from registry.gates import evaluation_results
from registry.models import DatasetVersion, ModelVersion
from registry.selectors import dataset_versions_visible_to, versions_visible_to

# Document namespaces and SPDX 3 element ids are minted under this base. `.invalid` is reserved
# (RFC 2606), so the ids never resolve to someone else's content; set PEDIGREE_SPDX_NAMESPACE
# to the public URL of the registry to make them resolvable.
DEFAULT_NAMESPACE = "https://pedigree.invalid/spdx"
TOOL_NAME = "Pedigree"
TOOL_VERSION = "0.1.0"

RISK_TO_SAFETY = {"minimal": "low", "limited": "medium", "high": "high", "unacceptable": "serious"}


UNRESOLVED_NOTE = (
    "; an unresolved upstream reference: a base a model card names that is not imported, "
    "so there is no artefact and no licence evidence"
)


def namespace_base() -> str:
    return getattr(settings, "PEDIGREE_SPDX_NAMESPACE", DEFAULT_NAMESPACE).rstrip("/")


def hub_url(version: ModelVersion) -> str | None:
    if not version.hub_repo_id:
        return None
    revision = version.hub_revision or "main"
    return f"https://huggingface.co/{version.hub_repo_id}/tree/{revision}"


def dataset_hub_url(dataset_version: DatasetVersion) -> str | None:
    hub_id = dataset_version.dataset.hub_id
    return f"https://huggingface.co/datasets/{hub_id}" if hub_id else None


@dataclass
class ExportBundle:
    version: ModelVersion
    versions: dict[int, ModelVersion]
    edges: list[LineageEdge]
    runs: dict[int, TrainingRun]
    uses: list[DataLink]
    visible_versions: set[int]
    visible_datasets: set[int]
    licences: dict[str, LicenceInfo]
    results: list[dict[str, Any]]
    created: datetime = field(default_factory=timezone.now)

    @property
    def dataset_versions(self) -> dict[int, DatasetVersion]:
        return {use.dataset_version_id: use.dataset_version for use in self.uses}

    def version_label(self, version: ModelVersion) -> str:
        if version.pk in self.visible_versions:
            return str(version)
        return f"model version #{version.pk} (not visible to you)"

    def dataset_label(self, dataset_version: DatasetVersion) -> str:
        if dataset_version.pk in self.visible_datasets:
            return str(dataset_version)
        return f"dataset version #{dataset_version.pk} (not visible to you)"

    def effective_licence(self, obj: ModelVersion | DatasetVersion) -> str:
        return obj.licence_concluded or obj.licence_declared

    def parents_of(self, version_id: int) -> list[LineageEdge]:
        return [edge for edge in self.edges if edge.child_id == version_id]

    def uses_of(self, version_id: int, roles=None) -> list[DataLink]:
        return [
            use
            for use in self.uses
            if use.user_version_id == version_id and (roles is None or use.role in roles)
        ]

    def trained_on(self, version_id: int) -> list[DataLink]:
        return self.uses_of(version_id, TRAINED_ON_ROLES)

    def tested_on(self, version_id: int) -> list[DataLink]:
        return self.uses_of(version_id, (DatasetRole.TEST,))

    def namespace(self) -> str:
        version = self.version
        return f"{namespace_base()}/{version.pk}-{version.artefact_digest[:16]}"


def export_bundle(user, version: ModelVersion) -> ExportBundle:
    within = ancestor_ids(version.pk, include_self=True)
    versions = {
        row.pk: row
        for row in ModelVersion.objects.filter(pk__in=within).select_related("model__team")
    }
    versions[version.pk] = version
    ids = list(versions)
    edges = list(LineageEdge.objects.filter(child_id__in=ids).order_by("child_id", "id"))
    runs = {run.version_id: run for run in TrainingRun.objects.filter(version_id__in=ids)}
    uses: list[DataLink] = [
        *TrainingDataset.objects.filter(run__version_id__in=ids)
        .select_related("run", "dataset_version__dataset__team")
        .order_by("run__version_id", "role", "id"),
        # The Hub datasets upstream cards declare as training data (references, no files).
        *UpstreamTrainingData.objects.filter(version_id__in=ids)
        .select_related("dataset_version__dataset__team")
        .order_by("version_id", "id"),
    ]
    dataset_ids = {use.dataset_version_id for use in uses}
    visible_datasets = (
        set(
            dataset_versions_visible_to(user)
            .filter(pk__in=dataset_ids)
            .values_list("pk", flat=True)
        )
        if dataset_ids
        else set()
    )
    licensed: list[ModelVersion | DatasetVersion] = [
        *versions.values(),
        *(use.dataset_version for use in uses),
    ]
    expressions = [
        text for obj in licensed for text in (obj.licence_declared, obj.licence_concluded) if text
    ]
    licence_ids = {
        base_licence_id(item)
        for text in expressions
        for alternative in expression_alternatives(text)[0]
        for item in alternative
    }
    return ExportBundle(
        version=version,
        versions=versions,
        edges=edges,
        runs=runs,
        uses=uses,
        visible_versions=set(
            versions_visible_to(user).filter(pk__in=ids).values_list("pk", flat=True)
        ),
        visible_datasets=visible_datasets,
        licences=licence_infos(licence_ids),
        results=evaluation_results(version),
    )
