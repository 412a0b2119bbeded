"""The training data an imported upstream card declares (`datasets:`): one dataset record per Hub
dataset, and one reference dataset version of it (no files, no digest) whose licence comes from
the dataset's own card when the local Hugging Face cache holds it, else NOASSERTION.

A Hub dataset is one record however many imported models name it, and importing again records
nothing new. Like the upstream models they describe, the records are visible org-wide and owned
by the team whose import created them first.
"""

from pathlib import Path

from django.db import IntegrityError
from django.db.models import Q

from registry import hub
from registry.audit import audit_record
from registry.errors import Conflict
from registry.models import Dataset, DatasetVersion, Team, Visibility
from registry.services._common import validate_fields
from registry.services.catalogue import dataset_create
from registry.types import Actor

# The label of a Hub dataset's reference version: the card names the dataset, not a revision.
REFERENCE_LABEL = "hub"


def hub_datasets(*, actor: Actor, team: Team, hub_ids: list[str]) -> list[Dataset]:
    """The dataset record of each Hub dataset id, created (visible org-wide) where missing."""
    existing = list(Dataset.objects.filter(Q(hub_id__in=hub_ids) | Q(name__in=hub_ids)))
    by_hub_id = {dataset.hub_id: dataset for dataset in existing if dataset.hub_id}
    names = {dataset.name: dataset for dataset in existing}
    datasets = []
    for hub_id in hub_ids:
        dataset = by_hub_id.get(hub_id)
        if dataset is None and hub_id in names:
            raise Conflict.for_field(
                "datasets",
                f"A dataset named {hub_id} exists but is not linked to the Hub dataset {hub_id}; "
                "set its hub_id (or rename it), then import again.",
            )
        if dataset is None:
            dataset = dataset_create(
                actor=actor,
                name=hub_id,
                team=team,
                visibility=Visibility.INTERNAL,
                source=hub.dataset_url(hub_id),
                hub_id=hub_id,
            )
        datasets.append(dataset)
    return datasets


def hub_dataset_references(
    *, actor: Actor, datasets: list[Dataset], caches: list[Path]
) -> list[tuple[DatasetVersion, hub.DatasetLicence | None]]:
    """The reference version of each Hub dataset, created where missing with the licence its
    card declares (read from `caches`); each comes with the licence read now, or None when the
    reference existed already (what compliance concluded on it stands)."""
    found = {
        reference.dataset_id: reference
        for reference in DatasetVersion.objects.filter(
            Q(reference=True) | Q(version=REFERENCE_LABEL), dataset__in=datasets
        ).select_related("dataset")
    }
    references: list[tuple[DatasetVersion, hub.DatasetLicence | None]] = []
    for dataset in datasets:
        reference = found.get(dataset.pk)
        if reference is not None:
            if not reference.reference:
                raise Conflict.for_field(
                    "datasets",
                    f"{dataset.name} already has a version '{REFERENCE_LABEL}' that is not a Hub "
                    "reference; relabel it, then import again.",
                )
            references.append((reference, None))
            continue
        licence = hub.dataset_licence(dataset.hub_id, caches=caches)
        reference = DatasetVersion(
            dataset=dataset,
            version=REFERENCE_LABEL,
            reference=True,
            sha256="",
            size_bytes=0,
            uri=licence.uri,
            licence_declared=licence.expression,
            intended_use="Named as training data by an upstream model card; no files recorded.",
            registered_by=actor,
        )
        validate_fields(reference, exclude=["sha256"])
        try:
            reference.save(force_insert=True)
        except IntegrityError:
            raise Conflict.for_field(
                "datasets",
                f"{dataset.name} was recorded by another import at the same moment; import again.",
            ) from None
        audit_record(
            actor=actor,
            action="dataset_version.reference_create",
            obj=reference,
            after={"hub_id": dataset.hub_id, "uri": reference.uri, "licence": licence.to_dict()},
        )
        references.append((reference, licence))
    return references
