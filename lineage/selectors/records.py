"""Direct reads of the lineage's records: a version's parent edges, its training run and data,
holds."""

from django.db.models import Exists, OuterRef, Prefetch, QuerySet

from lineage.models import (
    DataLink,
    HeldThrough,
    Hold,
    LineageEdge,
    TrainingDataset,
    TrainingRun,
    UpstreamTrainingData,
)
from registry.gates import GateContext
from registry.models import ModelVersion
from registry.selectors import dataset_versions_visible_to, is_compliance, versions_visible_to
from registry.types import Reader


def parent_edges(version: ModelVersion, reader: Reader | None = None) -> QuerySet[LineageEdge]:
    """The version's parent edges. For a `reader`, each edge says whether they may see its
    parent (`parent_visible`): a shared child may descend from another team's private version,
    whose name and digest the edge must then not show."""
    edges = (
        LineageEdge.objects.filter(child=version)
        .select_related("parent__model__team", "child__model", "created_by")
        .order_by("id")
    )
    if reader is not None:
        edges = edges.annotate(
            parent_visible=Exists(versions_visible_to(reader).filter(pk=OuterRef("parent_id")))
        )
    return edges


def pinned_parents(version: ModelVersion) -> list[LineageEdge]:
    """`parent_edges` with only what gates compare: each parent's name, label and current digest
    beside the digest pinned on the edge."""
    return list(
        parent_edges(version)
        .select_related(None)
        .select_related("parent__model")
        .only(
            "child_id",
            "relation",
            "parent_digest",
            "parent__version",
            "parent__artefact_digest",
            "parent__model__name",
        )
    )


def gate_parent_edges(context: GateContext) -> list[LineageEdge]:
    """`pinned_parents` of the version a gate evaluates, read once for all its checks."""
    return context.shared("lineage.parents", lambda: pinned_parents(context.version))


def training_run_of(version: ModelVersion, reader: Reader | None = None) -> TrainingRun | None:
    """The run that produced the version. For a `reader`, each dataset it used says whether
    they may see it (`dataset_visible`): another team's private data is named by no one else."""
    datasets = TrainingDataset.objects.select_related("dataset_version__dataset")
    if reader is not None:
        datasets = datasets.annotate(
            dataset_visible=Exists(
                dataset_versions_visible_to(reader).filter(pk=OuterRef("dataset_version_id"))
            )
        )
    return (
        TrainingRun.objects.filter(version=version)
        .select_related("run_by", "recorded_by", "version__model")
        .prefetch_related(Prefetch("datasets", datasets))
        .first()
    )


def training_data_of(version: ModelVersion) -> list[DataLink]:
    """The data the version was made with: its run's datasets (every role), then the Hub
    datasets its upstream card declares; two queries."""
    return [
        *TrainingDataset.objects.filter(run__version=version)
        .select_related("run", "dataset_version__dataset")
        .order_by("role", "id"),
        *UpstreamTrainingData.objects.filter(version=version)
        .select_related("dataset_version__dataset")
        .order_by("id"),
    ]


def active_holds_on(version_id: int) -> QuerySet[Hold]:
    """Active holds holding `version_id`, placed on it or on any ancestor (why it is held)."""
    return (
        Hold.objects.filter(held_versions__version_id=version_id, lifted_at__isnull=True)
        .select_related("version__model", "placed_by")
        .order_by("placed_at", "id")
    )


def holds_visible_to(user: Reader) -> QuerySet[Hold]:
    """Holds placed on versions the user may see."""
    holds = Hold.objects.select_related("version__model", "placed_by", "lifted_by")
    if is_compliance(user):
        return holds
    return holds.filter(version__in=versions_visible_to(user).values("pk"))


def held_count(hold: Hold) -> int:
    return HeldThrough.objects.filter(hold=hold).count()
