"""Writes of training runs: the run that produced a version, with the data it used."""

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import reduce
from typing import Any

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q

from lineage.models import DatasetRole, LineageEdge, Method, TrainingDataset, TrainingRun
from lineage.schemas import framework_version_problems, hyperparameter_problems
from lineage.services.edges import check_method_fits, require_lineage_write
from lineage.services.shared import clean, lineage_write_lock
from registry.audit import audit_record
from registry.errors import Conflict, FieldErrors, InvalidInput
from registry.models import DatasetVersion, ModelVersion, Team
from registry.retry import retry_transaction
from registry.selectors import as_id, dataset_versions_visible_to
from registry.services import snapshot
from registry.types import Actor

# A generous bound that keeps one request's work (one lookup per reference) small.
MAX_DATASETS = 64


@dataclass(frozen=True)
class DatasetUse:
    """A dataset version (object, id or `DATASET@VERSION`) a run used in `role`."""

    dataset_version: DatasetVersion | int | str
    role: str


def _dataset_version_lookup(ref: DatasetVersion | int | str) -> Q | None:
    if isinstance(ref, DatasetVersion):
        return Q(pk=ref.pk)
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        pk = as_id(str(ref))
        return Q(pk=pk) if pk is not None else None
    if isinstance(ref, str) and "@" in ref:
        name, _, label = ref.strip().rpartition("@")
        return Q(dataset__name=name, version=label)
    return None


def _names(ref: DatasetVersion | int | str, version: DatasetVersion) -> bool:
    if isinstance(ref, DatasetVersion | int) or ref.isdigit():
        return version.pk == (ref.pk if isinstance(ref, DatasetVersion) else int(ref))
    name, _, label = ref.strip().rpartition("@")
    return (version.dataset.name, version.version) == (name, label)


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
    """Checks on a run's own fields and on how it fits the child's parent `relations`; every
    problem is reported at once."""

    def name(field: str) -> str:
        return f"{prefix}.{field}" if prefix else field

    errors = FieldErrors()
    if method not in Method.values:
        errors.add(
            InvalidInput.for_field(
                name("method"),
                f"Unknown method '{method}'; use one of: {', '.join(Method.values)}.",
            )
        )
    else:
        errors.collect(lambda: check_method_fits(method, relations, name("method")))
        problems = hyperparameter_problems(method, hyperparameters, name("hyperparameters"))
        if problems:
            errors.add(_schema_problems(problems))
    problems = framework_version_problems(framework_versions, name("framework_versions"))
    if problems:
        errors.add(_schema_problems(problems))
    if started_at and finished_at and finished_at < started_at:
        errors.add(InvalidInput.for_field(name("finished_at"), "finished_at is before started_at."))
    if len(datasets) > MAX_DATASETS:
        errors.add(
            InvalidInput.for_field(name("datasets"), f"Name at most {MAX_DATASETS} datasets.")
        )
    for index, use in enumerate(datasets):
        if use.role not in DatasetRole.values:
            errors.add(
                InvalidInput.for_field(
                    name(f"datasets[{index}].role"),
                    f"Unknown role '{use.role}'; use one of: {', '.join(DatasetRole.values)}.",
                )
            )
    errors.raise_if_any()


def _schema_problems(problems: dict[str, list[str]]) -> InvalidInput:
    first, messages = next(iter(problems.items()))
    return InvalidInput(f"{first}: {messages[0]}", fields=problems)


def resolve_dataset_uses(
    actor: Actor, uses: Sequence[DatasetUse], field: str
) -> list[tuple[DatasetVersion, str]]:
    """Each dataset version a run used, with its role, in one query; every unknown one is
    reported at once."""
    lookups = [_dataset_version_lookup(use.dataset_version) for use in uses]
    wanted = [lookup for lookup in lookups if lookup is not None]
    # Only the dataset (its name) is read of what the visible dataset versions join.
    visible = dataset_versions_visible_to(actor).select_related(None).select_related("dataset")
    found = list(visible.filter(reduce(operator.or_, wanted))) if wanted else []
    errors = FieldErrors()
    resolved = []
    for index, (use, lookup) in enumerate(zip(uses, lookups, strict=True)):
        match = next((v for v in found if _names(use.dataset_version, v)), None) if lookup else None
        if match is None:
            errors.add(
                InvalidInput.for_field(
                    f"{field}[{index}].dataset_version",
                    f"No dataset version {use.dataset_version!s} that you can see. Register it "
                    "first (POST /api/v1/dataset-versions/) and name it as DATASET@VERSION or by "
                    "id.",
                )
            )
        elif match.reference:
            errors.add(
                InvalidInput.for_field(
                    f"{field}[{index}].dataset_version",
                    f"{match} is a Hub dataset an upstream model card names, recorded without "
                    "files: a run is pinned to the bytes it used. Register the files you trained "
                    "on as a version of the dataset (POST /api/v1/dataset-versions/) and name it.",
                    code="dataset_reference",
                )
            )
        else:
            resolved.append((match, use.role))
    errors.raise_if_any()
    return resolved


def check_run_fields(run: Mapping[str, Any], *, prefix: str) -> None:
    """The run's fields (code revision, compute…) as its row will check them, writing nothing.
    `run` holds `record_run`'s keyword arguments other than the version, people and datasets."""
    # The method is `validate_run_input`'s to check, with a better message.
    exclude = ["version", "method", "run_by", "recorded_by"]
    clean(TrainingRun(**run), prefix=prefix, exclude=exclude)


def resolve_run_by(team: Team, username: str | None, actor: Actor, field: str) -> Actor:
    if not username:
        return actor
    user = get_user_model().objects.filter(username=username, is_active=True, teams=team.pk).first()
    if user is None:
        raise InvalidInput.for_field(
            field, f"No active member of team '{team.slug}' named '{username}'."
        )
    return user


def check_no_repeats(datasets: Sequence[tuple[DatasetVersion, str]], *, prefix: str) -> None:
    seen: set[tuple[int, str]] = set()
    for index, (dataset_version, role) in enumerate(datasets):
        if (dataset_version.pk, role) in seen:
            field = f"{prefix}.datasets[{index}]" if prefix else f"datasets[{index}]"
            raise InvalidInput.for_field(
                field, f"{dataset_version} is listed twice as {role} data."
            )
        seen.add((dataset_version.pk, role))


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
) -> tuple[TrainingRun, list[TrainingDataset]]:
    """Write the run and its dataset links (checked by the caller); return both, the links in
    the order a read gives them (by role, then as listed)."""
    run = TrainingRun(
        version=version,
        method=method,
        hyperparameters=dict(hyperparameters or {}),
        run_by=run_by,
        recorded_by=actor,
        **details,
    )
    clean(run, prefix=prefix, exclude=["version"])
    try:
        # The one unique rule of a run is its version's: the INSERT answers "already recorded"
        # (a failed statement ends the transaction, which the Conflict rolls back).
        run.save(force_insert=True)
    except IntegrityError as error:
        raise Conflict.for_field(
            prefix or "version", f"{version} already has its training run recorded."
        ) from error
    check_no_repeats(datasets, prefix=prefix)
    links = [
        TrainingDataset(
            run=run, dataset_version=dataset_version, role=role, sha256=dataset_version.sha256
        )
        for dataset_version, role in datasets
    ]
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
    return run, sorted(links, key=lambda link: link.role)


@retry_transaction
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
    require_lineage_write(actor, version)
    lineage_write_lock()
    resolved, user = training_run_checked(
        actor=actor,
        version=version,
        method=method,
        hyperparameters=hyperparameters,
        framework_versions=framework_versions,
        datasets=datasets,
        started_at=started_at,
        finished_at=finished_at,
        run_by=run_by,
    )
    run, _ = record_run(
        actor=actor,
        version=version,
        method=method,
        hyperparameters=hyperparameters,
        datasets=resolved,
        run_by=user,
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
    return run


def training_run_checked(
    *,
    actor: Actor,
    version: ModelVersion,
    method: str,
    hyperparameters: Mapping[str, Any],
    framework_versions: Mapping[str, str],
    datasets: Sequence[DatasetUse],
    started_at: datetime | None,
    finished_at: datetime | None,
    run_by: str | None,
) -> tuple[list[tuple[DatasetVersion, str]], Actor]:
    """The checks of `training_run_record`'s input (lock held) that need no row written: the
    datasets it names and who ran it, resolved; every problem is reported at once."""
    relations = list(LineageEdge.objects.filter(child=version).values_list("relation", flat=True))
    errors = FieldErrors()
    errors.collect(
        lambda: validate_run_input(
            method=method,
            hyperparameters=hyperparameters,
            framework_versions=framework_versions,
            started_at=started_at,
            finished_at=finished_at,
            datasets=datasets,
            relations=relations,
            prefix="",
        )
    )
    resolved = errors.collect(lambda: resolve_dataset_uses(actor, datasets, "datasets"))
    user = errors.collect(lambda: resolve_run_by(version.model.team, run_by, actor, "run_by"))
    errors.raise_if_any()
    assert resolved is not None and user is not None  # `collect` gives None only for an error
    return resolved, user
