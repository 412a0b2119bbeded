"""Writes to the lineage: derivation edges, training runs, one-call registration, holds.

Every write checks permission, validates, takes the lineage lock and is audited in the same
transaction. Bad input raises a `registry.errors` error (→ 4xx) and the surrounding
transaction leaves nothing behind.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, connection, transaction
from django.db import models as dj_models
from django.utils import timezone

from lineage.models import (
    DatasetRole,
    HeldThrough,
    Hold,
    HoldCategory,
    LineageEdge,
    Method,
    Relation,
    TrainingDataset,
    TrainingRun,
)
from lineage.schemas import (
    METHODS_FOR_RELATION,
    framework_version_problems,
    hyperparameter_problems,
)
from lineage.selectors import marks, seed_sql, sql, walk_cte
from registry import services as registry_services
from registry.audit import audit_record
from registry.errors import Conflict, InvalidInput, PermissionRefused, invalid_from_django
from registry.models import DatasetVersion, ModelKind, ModelVersion, RegisteredModel
from registry.selectors import (
    dataset_versions_visible_to,
    is_compliance,
    is_team_member,
    models_visible_to,
    teams_visible_to,
    versions_visible_to,
)
from registry.services import event_publish, snapshot

# Arbitrary constant naming the PostgreSQL advisory lock that serialises lineage writes.
LINEAGE_LOCK_KEY = 7_220_432
# Generous bounds that keep one request's work (one lookup per reference) small.
MAX_PARENTS = 32
MAX_DATASETS = 64


@dataclass(frozen=True)
class ParentSpec:
    """A parent to record: a version (object, id, or `MODEL@LABEL` / `MODEL@HUB_REVISION`)."""

    version: ModelVersion | int | str
    relation: str


@dataclass(frozen=True)
class DatasetUse:
    """A dataset version (object, id or `DATASET@VERSION`) a run used in `role`."""

    dataset_version: DatasetVersion | int | str
    role: str


def lineage_write_lock() -> None:
    """Serialise lineage writes for the rest of the transaction (PostgreSQL).

    Locking the two endpoint rows of a new edge is not enough: edges X→Y and U→V inserted at
    once can close a cycle through existing paths Y…U and V…X without sharing a row. One
    transaction-level advisory lock makes "check reachability, then insert" atomic, and also
    orders hold propagation against new edges so no descendant escapes a hold. Lineage writes
    are rare, so the contention is negligible. Take it before the transaction's first audited
    write: the audit chain has its own lock, and taking both in one order rules out deadlock.
    On SQLite the database file lock already serialises writers.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("lineage_write_lock must be taken inside a transaction")
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LINEAGE_LOCK_KEY])


def _prefixed(error: InvalidInput, prefix: str) -> InvalidInput:
    if not prefix:
        return error
    fields = {
        f"{prefix}.{name}" if name != "__all__" else prefix: messages
        for name, messages in error.fields.items()
    }
    return InvalidInput(f"{prefix}.{error.message}" if fields else error.message, fields=fields)


def _clean(obj: dj_models.Model, *, prefix: str = "", exclude: Sequence[str] = ()) -> None:
    try:
        obj.full_clean(exclude=list(exclude), validate_constraints=False)
    except DjangoValidationError as error:
        raise _prefixed(invalid_from_django(error), prefix) from None


# --- Resolving references -----------------------------------------------------------------


def _resolve_version(actor, ref: ModelVersion | int | str, field: str) -> ModelVersion:
    versions = versions_visible_to(actor)
    not_found = InvalidInput.for_field(
        field,
        f"No version {ref!s} that you can see. Name a pinned version as MODEL@VERSION "
        "(or MODEL@<40-character hub revision>, or its numeric id).",
    )
    if isinstance(ref, ModelVersion):
        found = versions.filter(pk=ref.pk).first()
    elif isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        found = versions.filter(pk=int(ref)).first()
    elif isinstance(ref, str):
        name, sep, label = ref.strip().rpartition("@")
        if not sep or not name or not label:
            raise not_found
        found = versions.filter(model__name=name, version=label).first()
        if found is None and len(label) == 40:
            matches = list(versions.filter(model__name=name, hub_revision=label)[:2])
            if len(matches) > 1:
                raise InvalidInput.for_field(
                    field, f"{ref} matches several versions; name one as MODEL@VERSION."
                )
            found = matches[0] if matches else None
    else:
        found = None
    if found is None:
        raise not_found
    return found


def _resolve_dataset_version(actor, ref: DatasetVersion | int | str, field: str) -> DatasetVersion:
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


# --- Rules on a version's set of parents ----------------------------------------------------


def main_relation(relations: Sequence[str]) -> str | None:
    """The relation that says how the child was made: merge or distillation when present,
    otherwise that of its only parent."""
    for decisive in (Relation.MERGE, Relation.DISTILLATION):
        if decisive in relations:
            return decisive
    return relations[0] if relations else None


def _check_parent_set(relations: Sequence[str], field: str) -> None:
    """Only merges and distillations have several parents:

    * merge: two or more parents, every edge `merge`;
    * distillation: one or more teachers (`distillation`) plus at most one student
      initialisation (`finetune`: the student's starting weights, trained further);
    * anything else: exactly one parent.
    """
    unknown = sorted(set(relations) - set(Relation.values))
    if unknown:
        raise InvalidInput.for_field(
            field,
            f"Unknown relation {', '.join(unknown)}; use one of: {', '.join(Relation.values)}.",
        )
    listed = ", ".join(relations)
    if Relation.MERGE in relations:
        if any(relation != Relation.MERGE for relation in relations):
            raise InvalidInput.for_field(
                field, f"A merge's parents must all have relation 'merge' (got: {listed})."
            )
        if len(relations) < 2:
            raise InvalidInput.for_field(
                field,
                "A merge needs at least two parents, each with relation 'merge'; for a single "
                "parent use finetune, adapter, quantized, distillation or continued_pretraining.",
            )
        return
    if Relation.DISTILLATION in relations:
        others = [relation for relation in relations if relation != Relation.DISTILLATION]
        if len(others) > 1 or any(relation != Relation.FINETUNE for relation in others):
            raise InvalidInput.for_field(
                field,
                "A distillation has one or more teachers (relation 'distillation') and at most "
                f"one student initialisation (relation 'finetune'); got: {listed}.",
            )
        return
    if len(relations) > 1:
        raise InvalidInput.for_field(
            field,
            "Only merges (every parent 'merge') and distillations (teachers 'distillation' "
            f"plus at most one 'finetune' student initialisation) have several parents; got: "
            f"{listed}.",
        )


def _check_method_fits(method: str, relations: Sequence[str], field: str) -> None:
    relation = main_relation(relations)
    if relation is None:
        return
    allowed = METHODS_FOR_RELATION[relation]
    if method not in allowed:
        raise InvalidInput.for_field(
            field,
            f"A '{relation}' child cannot be made by method '{method}'; "
            f"use one of: {', '.join(sorted(allowed))}.",
        )


def _would_close_cycle(child_id: int, parent_ids: Sequence[int]) -> bool:
    """Whether `child` is among the parents' ancestors (or is one of them): one recursive
    query, run under the lineage lock so no concurrent edge can slip in between."""
    if not parent_ids:
        return False
    walk = walk_cte("walk", "up", seed_sql(len(parent_ids)), None)
    with connection.cursor() as cursor:
        cursor.execute(
            sql("WITH RECURSIVE {walk} SELECT 1 FROM walk WHERE id = %s LIMIT 1", walk=walk),
            [*parent_ids, child_id],
        )
        return cursor.fetchone() is not None


def _propagate_holds(child_id: int, parent_ids: Sequence[int]) -> int:
    """Hold `child` and its descendants by every active hold that holds one of the new
    parents: one INSERT … SELECT over the recursive walk. Returns rows inserted."""
    with connection.cursor() as cursor:
        # INSERT comes first so the driver reports rowcount; the WHERE clause keeps SQLite
        # from reading ON CONFLICT as a join constraint.
        cursor.execute(
            sql(
                "INSERT INTO {held} (hold_id, version_id) WITH RECURSIVE {walk} "
                "SELECT DISTINCT h.hold_id, b.id FROM {held} h, below b "
                "WHERE h.version_id IN ({parents}) ON CONFLICT (hold_id, version_id) DO NOTHING",
                walk=walk_cte("below", "down", seed_sql(), None),
                parents=marks(len(parent_ids)),
            ),
            [child_id, *parent_ids],
        )
        return max(cursor.rowcount, 0)


# --- Edges ----------------------------------------------------------------------------------


def _add_parents(
    *, actor, child: ModelVersion, parents: Sequence[tuple[ModelVersion, str]], field: str
) -> list[LineageEdge]:
    """Record resolved parents of `child` (lock held, permissions checked by the caller)."""
    existing = dict(LineageEdge.objects.filter(child=child).values_list("parent_id", "relation"))
    seen: set[int] = set()
    for index, (parent, _) in enumerate(parents):
        where = f"{field}[{index}].version"
        if parent.pk == child.pk:
            raise InvalidInput.for_field(where, f"{child} cannot be its own parent.")
        if parent.pk in seen:
            raise InvalidInput.for_field(where, f"{parent} is listed twice; name each parent once.")
        if parent.pk in existing:
            raise Conflict.for_field(where, f"{parent} is already a parent of {child}.")
        seen.add(parent.pk)
    relations = [*existing.values(), *(relation for _, relation in parents)]
    _check_parent_set(relations, field)
    run = TrainingRun.objects.filter(version=child).values_list("method", flat=True).first()
    if run is not None:
        _check_method_fits(run, relations, field)
    if _would_close_cycle(child.pk, [parent.pk for parent, _ in parents]):
        names = ", ".join(str(parent) for parent, _ in parents)
        raise InvalidInput.for_field(
            field,
            f"Recording {names} as parent of {child} would make a cycle: {child} is already "
            f"an ancestor of {names}. Lineage points from a version to what it was made from.",
        )
    edges = [
        LineageEdge(
            child=child,
            parent=parent,
            relation=relation,
            parent_digest=parent.artefact_digest,
            created_by=actor,
        )
        for parent, relation in parents
    ]
    try:
        with transaction.atomic():
            LineageEdge.objects.bulk_create(edges)
    except IntegrityError as error:
        raise Conflict.for_field(
            field, f"The parents of {child} changed meanwhile; reload and try again."
        ) from error
    inherited = _propagate_holds(child.pk, [parent.pk for parent, _ in parents])
    for edge in edges:
        audit_record(
            actor=actor,
            action="lineage_edge.create",
            obj=edge,
            after={
                "child": edge.child_id,
                "parent": edge.parent_id,
                "relation": edge.relation,
                "parent_digest": edge.parent_digest,
                "holds_inherited": inherited,
            },
        )
    return edges


def _require_lineage_write(actor, child: ModelVersion) -> None:
    """The child's team records its lineage while it is in development; compliance staff may
    also correct lineage later (a lineage that changes after approval changes obligations)."""
    if is_compliance(actor):
        return
    registry_services.require_team_write(actor, child.model.team)
    if child.stage != "development":
        raise PermissionRefused(
            f"{child} is in {child.stage}; its lineage is frozen once it leaves development. "
            "Ask compliance staff to correct it."
        )


def _resolve_parents(
    actor, parents: Sequence[ParentSpec], field: str
) -> list[tuple[ModelVersion, str]]:
    if len(parents) > MAX_PARENTS:
        raise InvalidInput.for_field(field, f"Name at most {MAX_PARENTS} parents.")
    return [
        (_resolve_version(actor, spec.version, f"{field}[{index}].version"), spec.relation)
        for index, spec in enumerate(parents)
    ]


@transaction.atomic
def edges_create(*, actor, child: ModelVersion, parents: Sequence[ParentSpec]) -> list[LineageEdge]:
    """Add parents to `child` in one go (a merge's parents must come together)."""
    lineage_write_lock()
    child = ModelVersion.objects.select_related("model__team").get(pk=child.pk)
    _require_lineage_write(actor, child)
    if not parents:
        raise InvalidInput.for_field("parents", "Name at least one parent.")
    resolved = _resolve_parents(actor, parents, "parents")
    return _add_parents(actor=actor, child=child, parents=resolved, field="parents")


def edge_create(
    *, actor, child: ModelVersion, parent: ModelVersion | int | str, relation: str
) -> LineageEdge:
    """Add one parent to `child`."""
    return edges_create(actor=actor, child=child, parents=[ParentSpec(parent, relation)])[0]


# --- Training runs --------------------------------------------------------------------------


def _validate_run_input(
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
    _check_method_fits(method, relations, name("method"))
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


def _run_by(version: ModelVersion, username: str | None, actor, field: str):
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


def _record_run(
    *,
    actor,
    version: ModelVersion,
    method: str,
    hyperparameters: Mapping[str, Any] | None,
    datasets: Sequence[tuple[DatasetVersion, str]],
    run_by,
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
    _clean(run, prefix=prefix, exclude=["version"])
    run.save(force_insert=True)
    links, seen = [], set()
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
    actor,
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
    _validate_run_input(
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
            _resolve_dataset_version(actor, use.dataset_version, f"datasets[{i}].dataset_version"),
            use.role,
        )
        for i, use in enumerate(datasets)
    ]
    return _record_run(
        actor=actor,
        version=version,
        method=method,
        hyperparameters=hyperparameters,
        datasets=resolved,
        run_by=_run_by(version, run_by, actor, "run_by"),
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


# --- Registration ---------------------------------------------------------------------------


def _model_for_registration(
    actor, name: str, create_model: Mapping[str, Any] | None, has_parents: bool
) -> RegisteredModel:
    model = models_visible_to(actor).filter(name=name).first()
    if model is not None:
        return model
    if create_model is None:
        raise InvalidInput.for_field(
            "model",
            f'No model \'{name}\' that you can see. Pass create_model: {{"team": "<slug>"}} '
            "to create it in one of your teams as part of this registration.",
        )
    options = dict(create_model)
    team_slug = options.pop("team", None)
    team = teams_visible_to(actor).filter(slug=team_slug).first() if team_slug else None
    if team is None:
        raise InvalidInput.for_field(
            "create_model.team", f"No team '{team_slug}' that you belong to; name one of yours."
        )
    options.setdefault("kind", ModelKind.DERIVED if has_parents else ModelKind.UPSTREAM)
    return registry_services.model_create(actor=actor, name=name, team=team, **options)


@transaction.atomic
def registration_create(
    *,
    actor,
    model: str,
    version: str,
    parents: Sequence[ParentSpec] = (),
    training_run: Mapping[str, Any] | None = None,
    create_model: Mapping[str, Any] | None = None,
    artefact_path: str | None = None,
    artefact_upload: Any = None,
    artefact_digest: str | None = None,
    **attributes: Any,
) -> ModelVersion:
    """Register a version with its parents, training run and datasets, atomically.

    `model` is a model name; when it does not exist yet and `create_model` is given
    (`{"team": slug, "kind"?, "visibility"?, "task"?, "description"?}`) it is created too.
    `training_run` holds the keyword arguments of `training_run_record` (datasets as
    `DatasetUse`s). The artefact and `attributes` (licence, risk metadata…) go to
    `registry.services.version_register`, which inspects the files.
    Anything wrong raises before the transaction commits, so nothing is half-written.

    The lineage lock is taken before the version is created (lock order: lineage, then audit),
    so files named by `artefact_path` are hashed while holding it; clients should upload first
    (`artefact_upload`, hashed at upload time), as `pedigree register` does.
    """
    relations = [spec.relation for spec in parents]
    _check_parent_set(relations, "parents")
    run = dict(training_run or {})
    run_datasets: Sequence[DatasetUse] = run.pop("datasets", ())
    if training_run is not None:
        _validate_run_input(
            method=run.get("method", ""),
            hyperparameters=run.setdefault("hyperparameters", {}),
            framework_versions=run.setdefault("framework_versions", {}),
            started_at=run.get("started_at"),
            finished_at=run.get("finished_at"),
            datasets=run_datasets,
            relations=relations,
            prefix="training_run",
        )

    # Reads first, then the lock, then writes: the lock must precede the first audited write.
    resolved_parents = _resolve_parents(actor, parents, "parents")
    resolved_data = [
        (
            _resolve_dataset_version(
                actor, use.dataset_version, f"training_run.datasets[{i}].dataset_version"
            ),
            use.role,
        )
        for i, use in enumerate(run_datasets)
    ]
    lineage_write_lock()
    registered_model = _model_for_registration(actor, model, create_model, bool(parents))
    created = registry_services.version_register(
        actor=actor,
        model=registered_model,
        version=version,
        artefact_path=artefact_path,
        artefact_upload=artefact_upload,
        artefact_digest=artefact_digest,
        **attributes,
    )
    if resolved_parents:
        _add_parents(actor=actor, child=created, parents=resolved_parents, field="parents")
    if training_run is not None:
        method = run.pop("method")
        _record_run(
            actor=actor,
            version=created,
            method=method,
            hyperparameters=run.pop("hyperparameters"),
            datasets=resolved_data,
            run_by=_run_by(created, run.pop("run_by", None), actor, "training_run.run_by"),
            prefix="training_run",
            **run,
        )
    return created


# --- Holds ----------------------------------------------------------------------------------


@transaction.atomic
def hold_place(
    *,
    actor,
    version: ModelVersion,
    reason: str,
    category: str = HoldCategory.OTHER,
    reference: str = "",
) -> Hold:
    """Hold `version` and every descendant (one INSERT … SELECT over the recursive walk).

    Compliance staff and the version's owning team may place holds: stopping a model is
    always safe, and the team is often first to learn of a problem. Only compliance lifts.
    """
    version = ModelVersion.objects.select_related("model__team").get(pk=version.pk)
    if not (is_compliance(actor) or is_team_member(actor, version.model.team_id)):
        raise PermissionRefused(
            f"Only compliance staff or members of team '{version.model.team.slug}' can place "
            f"a hold on {version}."
        )
    if not reason or not reason.strip():
        raise InvalidInput.for_field(
            "reason", "Say why the version is held (e.g. 'upstream licence withdrawn')."
        )
    if category not in HoldCategory.values:
        raise InvalidInput.for_field(
            "category",
            f"Unknown category '{category}'; use one of: {', '.join(HoldCategory.values)}.",
        )
    lineage_write_lock()
    hold = Hold(
        version=version,
        category=category,
        reason=reason.strip(),
        reference=reference,
        placed_by=actor,
    )
    _clean(hold, exclude=["version", "placed_by"])
    hold.save(force_insert=True)
    with connection.cursor() as cursor:
        cursor.execute(
            sql(
                "INSERT INTO {held} (hold_id, version_id) WITH RECURSIVE {walk} "
                "SELECT %s, id FROM below",
                walk=walk_cte("below", "down", seed_sql(), None),
            ),
            [version.pk, hold.pk],
        )
        held = cursor.rowcount
    audit_record(
        actor=actor,
        action="hold.place",
        obj=hold,
        after=snapshot(hold) | {"held_versions": held},
    )
    event_publish(
        kind="version.held",
        payload={
            "version": str(version),
            "hold": hold.pk,
            "reason": hold.reason,
            "held_versions": held,
            "by": actor.username,
        },
    )
    return hold


@transaction.atomic
def hold_lift(*, actor, hold: Hold, reason: str) -> Hold:
    """Lift a hold and every hold it passed down (one DELETE). Compliance staff only: a lift
    clears a stop that may protect other teams' descendants, so it needs a reviewer."""
    if not is_compliance(actor):
        raise PermissionRefused("Only compliance staff can lift a hold.")
    if not reason or not reason.strip():
        raise InvalidInput.for_field("reason", "Say why the hold can be lifted.")
    lineage_write_lock()
    before = snapshot(Hold.objects.get(pk=hold.pk))
    now = timezone.now()
    lifted = Hold.objects.filter(pk=hold.pk, lifted_at__isnull=True).update(
        lifted_at=now, lifted_by=actor, lift_reason=reason.strip()
    )
    if not lifted:
        raise Conflict(f"Hold #{hold.pk} was already lifted.")
    released, _ = HeldThrough.objects.filter(hold_id=hold.pk).delete()
    hold.refresh_from_db()
    audit_record(
        actor=actor,
        action="hold.lift",
        obj=hold,
        before=before,
        after=snapshot(hold) | {"released_versions": released},
    )
    event_publish(
        kind="version.hold_lifted",
        payload={
            "version": str(hold.version),
            "hold": hold.pk,
            "reason": hold.lift_reason,
            "released_versions": released,
            "by": actor.username,
        },
    )
    return hold
