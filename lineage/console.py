"""What lineage adds to the compliance console: parents, training data and hyperparameters in
the comparison of two versions, and holds and training in a version's timeline."""

from typing import Any

from django.db.models import Q
from django.urls import reverse

from lineage.models import Hold, UpstreamTrainingData
from lineage.selectors import parent_edges, training_run_of
from registry.models import ModelVersion
from registry.plugins import ComparisonSection, TimelineEvent, TimelineProvider
from registry.selectors import dataset_versions_visible_to, versions_visible_to
from registry.types import Reader


def parent_facts(reader: Reader, version: ModelVersion) -> dict[str, Any]:
    edges = list(parent_edges(version))
    visible = set(
        versions_visible_to(reader)
        .filter(pk__in=[edge.parent_id for edge in edges])
        .values_list("pk", flat=True)
    )
    return {
        (str(edge.parent) if edge.parent_id in visible else "a version hidden from you"): (
            f"{edge.relation}, weights {edge.parent_digest[:12]}…"
        )
        for edge in edges
    }


def _licence_of(dataset_version: Any) -> str:
    return dataset_version.licence_concluded or dataset_version.licence_declared


def training_facts(reader: Reader, version: ModelVersion) -> dict[str, Any]:
    run = training_run_of(version)
    declared = [
        f"{link.dataset_version} ({_licence_of(link.dataset_version)})"
        for link in UpstreamTrainingData.objects.filter(
            version=version,
            dataset_version__in=dataset_versions_visible_to(reader),
        ).select_related("dataset_version__dataset")
    ]
    card = {"training data the card names": ", ".join(declared)} if declared else {}
    if run is None:
        return card
    facts: dict[str, Any] = {"method": run.method, **card}
    for link in run.datasets.all():
        facts[f"{link.role} data"] = f"{link.dataset_version} (sha256 {link.sha256[:12]}…)"
    facts.update(
        {f"hyperparameter {name}": value for name, value in sorted(run.hyperparameters.items())}
    )
    facts.update(
        {
            "code revision": run.code_revision or None,
            "device": run.device_kind or None,
            "GPU hours": run.gpu_hours,
            "energy (kWh)": run.energy_kwh,
        }
    )
    return {label: value for label, value in facts.items() if value is not None}


def lineage_events(version: ModelVersion) -> list[TimelineEvent]:
    """Holds placed on the version (or on an ancestor, while they hold it), their lifting, and
    its training run. Three queries."""
    events = []
    # Held-through rows exist only while a hold is active: lifted holds are found on the version.
    holds = Hold.objects.filter(
        Q(version=version) | Q(held_versions__version_id=version.pk)
    ).select_related("version__model", "placed_by", "lifted_by")
    for hold in holds.distinct():
        url = reverse("admin:lineage_hold_change", args=[hold.pk])
        through = "" if hold.version_id == version.pk else f" (on ancestor {hold.version})"
        events.append(
            TimelineEvent(
                hold.placed_at, "hold", f"held by {hold.placed_by}{through}: {hold.reason}", url
            )
        )
        if hold.lifted_at:
            events.append(
                TimelineEvent(
                    hold.lifted_at,
                    "hold",
                    f"hold #{hold.pk} lifted by {hold.lifted_by}: {hold.lift_reason}",
                    url,
                )
            )
    run = training_run_of(version)
    if run is not None and run.finished_at:
        events.append(
            TimelineEvent(
                run.finished_at,
                "training",
                f"trained ({run.method}) by {run.run_by}",
                reverse("admin:lineage_trainingrun_change", args=[run.pk]),
            )
        )
    return events


CONTRIBUTIONS = (
    ComparisonSection("Parents", parent_facts),
    ComparisonSection("Training", training_facts),
    TimelineProvider("lineage", lineage_events),
)
