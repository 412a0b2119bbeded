"""Writes of training runs: the run that produced a version, with the data it used."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from lineage.models import DatasetRole, LineageEdge, Method, TrainingDataset, TrainingRun
from lineage.schemas import framework_version_problems, hyperparameter_problems
from lineage.services.edges import check_method_fits
from lineage.services.shared import clean, lineage_write_lock
from registry import services as registry_services
from registry.audit import audit_record
from registry.errors import Conflict, InvalidInput
from registry.models import DatasetVersion, ModelVersion
from registry.selectors import dataset_versions_visible_to
from registry.services import snapshot
from registry.types import Actor

# A generous bound that keeps one request's work (one lookup per reference) small.
MAX_DATASETS = 64


@dataclass(frozen=True)
class DatasetUse:
    """A dataset version (object, id or `DATASET@VERSION`) a run used in `role`."""

    dataset_version: DatasetVersion | int | str
    role: str


def resolve_dataset_version(
    actor: Actor, ref: DatasetVersion | int | str, field: str
) -> DatasetVersion:
    versions = dataset_versions_visible_to(actor)
    if isinstance(ref, DatasetVersion):
        found = versions.filter(pk=ref.pk).first()
    elif isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        found = versions.filter(pk=int(ref)).first()
    elif isinstance(ref, str) and "@" in ref:
        name, _, label = ref.strip().rpartition("@")
        found = versions.filter(dataset__name=name, version=label).first()
    else:
        found = None
    if found is None:
        raise InvalidInput.for_field(
            field,
            f"No dataset version {ref!s} that you can see. Register it first "
            "(POST /api/v1/dataset-versions/) and name it as DATASET@VERSION or by id.",
        )
    return found


# --- Training runs --------------------------------------------------------------------------


def validate_run_input(
    *,
    method: str,
    hyperparameters: Any,
    framework_versions: Any,
    started_at: datetime | None,
    finished_at: datetime | None,
    datasets: Sequence[DatasetUse],
    relations: Sequence[str],
    prefix: str,
) -> None:
    """Checks on a run's own fields and on how it fits the child's parent `relations`."""

    def name(field: str) -> str:
        return f"{prefix}.{field}" if prefix else field

    if method not in Method.values:
        raise InvalidInput.for_field(
            name("method"), f"Unknown method '{method}'; use one of: {', '.join(Method.values)}."
        )
    check_method_fits(method, relations, name("method"))
    problems = hyperparameter_problems(method, hyperparameters, name("hyperparameters"))
    problems |= framework_version_problems(framework_versions, name("framework_versions"))
    if problems:
        first, messages = next(iter(problems.items()))
        raise InvalidInput(f"{first}: {messages[0]}", fields=problems)
    if started_at and finished_at and finished_at < started_at:
        raise InvalidInput.for_field(name("finished_at"), "finished_at is before started_at.")
    if len(datasets) > MAX_DATASETS:
        raise InvalidInput.for_field(name("datasets"), f"Name at most {MAX_DATASETS} datasets.")
    for index, use in enumerate(datasets):
        if use.role not in DatasetRole.values:
            raise InvalidInput.for_field(
                name(f"datasets[{index}].role"),
                f"Unknown role '{use.role}'; use one of: {', '.join(DatasetRole.values)}.",
            )


def resolve_run_by(version: ModelVersion, username: str | None, actor: Actor, field: str) -> Actor:
    if not username:
        return actor
    user = (
        get_user_model()
        .objects.filter(username=username, is_active=True, teams=version.model.team_id)
        .first()
    )
    if user is None:
        raise InvalidInput.for_field(
            field, f"No active member of team '{version.model.team.slug}' named '{username}'."
        )
    return user


def record_run(
    *,
    actor: Actor,
    version: ModelVersion,
    method: str,
    hyperparameters: Mapping[str, Any] | None,
    datasets: Sequence[tuple[DatasetVersion, str]],
    run_by: Actor,
    prefix: str,
    **details: Any,
) -> TrainingRun:
    if TrainingRun.objects.filter(version=version).exists():
        raise Conflict.for_field(
            prefix or "version", f"{version} already has its training run recorded."
        )
    run = TrainingRun(
        version=version,
        method=method,
        hyperparameters=dict(hyperparameters or {}),
        run_by=run_by,
        recorded_by=actor,
        **details,
    )
    clean(run, prefix=prefix, exclude=["version"])
    run.save(force_insert=True)
    links: list[TrainingDataset] = []
    seen: set[tuple[int, str]] = set()
    for index, (dataset_version, role) in enumerate(datasets):
        if (dataset_version.pk, role) in seen:
            field = f"{prefix}.datasets[{index}]" if prefix else f"datasets[{index}]"
            raise InvalidInput.for_field(
                field, f"{dataset_version} is listed twice as {role} data."
            )
        seen.add((dataset_version.pk, role))
        links.append(
            TrainingDataset(
                run=run, dataset_version=dataset_version, role=role, sha256=dataset_version.sha256
            )
        )
    TrainingDataset.objects.bulk_create(links)
    audit_record(
        actor=actor,
        action="training_run.create",
        obj=run,
        after=snapshot(run)
        | {
            "datasets": [
                {
                    "dataset_version": link.dataset_version_id,
                    "role": link.role,
                    "sha256": link.sha256,
                }
                for link in links
            ]
        },
    )
    return run


@transaction.atomic
def training_run_record(
    *,
    actor: Actor,
    version: ModelVersion,
    method: str,
    hyperparameters: Mapping[str, Any] | None = None,
    datasets: Sequence[DatasetUse] = (),
    code_repository: str = "",
    code_revision: str = "",
    framework_versions: Mapping[str, str] | None = None,
    device_kind: str = "",
    device_count: int | None = None,
    gpu_hours: float | None = None,
    energy_kwh: float | None = None,
    started_at: datetime | None = None,
    finished_at: datetime | None = None,
    notes: str = "",
    run_by: str | None = None,
) -> TrainingRun:
    """Record the run that produced `version` (once). `run_by` is the username of the member
    of the owning team who ran it (default: the actor)."""
    hyperparameters = {} if hyperparameters is None else hyperparameters
    framework_versions = {} if framework_versions is None else framework_versions
    version = ModelVersion.objects.select_related("model__team").get(pk=version.pk)
    registry_services.require_team_write(actor, version.model.team)
    lineage_write_lock()
    validate_run_input(
        method=method,
        hyperparameters=hyperparameters,
        framework_versions=framework_versions,
        started_at=started_at,
        finished_at=finished_at,
        datasets=datasets,
        relations=list(
            LineageEdge.objects.filter(child=version).values_list("relation", flat=True)
        ),
        prefix="",
    )
    resolved = [
        (
            resolve_dataset_version(actor, use.dataset_version, f"datasets[{i}].dataset_version"),
            use.role,
        )
        for i, use in enumerate(datasets)
    ]
    return record_run(
        actor=actor,
        version=version,
        method=method,
        hyperparameters=hyperparameters,
        datasets=resolved,
        run_by=resolve_run_by(version, run_by, actor, "run_by"),
        prefix="",
        code_repository=code_repository,
        code_revision=code_revision,
        framework_versions=dict(framework_versions),
        device_kind=device_kind,
        device_count=device_count,
        gpu_hours=gpu_hours,
        energy_kwh=energy_kwh,
        started_at=started_at,
        finished_at=finished_at,
        notes=notes,
    )
