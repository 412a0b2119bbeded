"""Writes of derivation edges: the rules on a version's set of parents, the cycle check, and
the holds a new child inherits from its parents."""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from django.db import IntegrityError, connection, transaction

from lineage.models import LineageEdge, Relation, TrainingRun
from lineage.schemas import METHODS_FOR_RELATION
from lineage.selectors import marks, seed_sql, sql, walk_cte
from lineage.services.shared import lineage_write_lock
from registry import services as registry_services
from registry.audit import audit_record
from registry.errors import Conflict, FieldErrors, InvalidInput, PermissionRefused
from registry.models import ModelVersion
from registry.selectors import as_id, is_compliance, versions_visible_to
from registry.types import Actor

# A generous bound that keeps one request's work (one lookup per reference) small.
MAX_PARENTS = 32


@dataclass(frozen=True)
class ParentSpec:
    """A parent to record: a version (object, id, or `MODEL@LABEL` / `MODEL@HUB_REVISION`)."""

    version: ModelVersion | int | str
    relation: str


def _resolve_version(actor: Actor, ref: ModelVersion | int | str, field: str) -> ModelVersion:
    versions = versions_visible_to(actor)
    not_found = InvalidInput.for_field(
        field,
        f"No version {ref!s} that you can see. Name a pinned version as MODEL@VERSION "
        "(or MODEL@<40-character hub revision>, or its numeric id).",
    )
    if isinstance(ref, ModelVersion):
        found = versions.filter(pk=ref.pk).first()
    elif isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        pk = as_id(str(ref))
        found = versions.filter(pk=pk).first() if pk is not None else None
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


# --- Rules on a version's set of parents ----------------------------------------------------


def main_relation(relations: Sequence[str]) -> str | None:
    """The relation that says how the child was made: merge or distillation when present,
    otherwise that of its only parent."""
    for decisive in (Relation.MERGE, Relation.DISTILLATION):
        if decisive in relations:
            return decisive
    return relations[0] if relations else None


def check_parent_set(relations: Sequence[str], field: str) -> None:
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


def check_method_fits(method: str, relations: Sequence[str], field: str) -> None:
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
        return max(int(cursor.rowcount), 0)


# --- Edges ----------------------------------------------------------------------------------


def add_parents(
    *, actor: Actor, child: ModelVersion, parents: Sequence[tuple[ModelVersion, str]], field: str
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
    check_parent_set(relations, field)
    run = TrainingRun.objects.filter(version=child).values_list("method", flat=True).first()
    if run is not None:
        check_method_fits(run, relations, field)
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


def _require_lineage_write(actor: Actor, child: ModelVersion) -> None:
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


def resolve_parents(
    actor: Actor, parents: Sequence[ParentSpec], field: str
) -> list[tuple[ModelVersion, str]]:
    """Each parent a registration names, with its relation; every unknown one at once."""
    if len(parents) > MAX_PARENTS:
        raise InvalidInput.for_field(field, f"Name at most {MAX_PARENTS} parents.")
    errors = FieldErrors()
    resolved = [
        (
            errors.collect(
                partial(_resolve_version, actor, spec.version, f"{field}[{index}].version")
            ),
            spec.relation,
        )
        for index, spec in enumerate(parents)
    ]
    errors.raise_if_any()
    return [(version, relation) for version, relation in resolved if version is not None]


@transaction.atomic
def edges_create(
    *, actor: Actor, child: ModelVersion, parents: Sequence[ParentSpec]
) -> list[LineageEdge]:
    """Add parents to `child` in one go (a merge's parents must come together)."""
    lineage_write_lock()
    child = ModelVersion.objects.select_related("model__team").get(pk=child.pk)
    _require_lineage_write(actor, child)
    if not parents:
        raise InvalidInput.for_field("parents", "Name at least one parent.")
    resolved = resolve_parents(actor, parents, "parents")
    return add_parents(actor=actor, child=child, parents=resolved, field="parents")


def edge_create(
    *, actor: Actor, child: ModelVersion, parent: ModelVersion | int | str, relation: str
) -> LineageEdge:
    """Add one parent to `child`."""
    return edges_create(actor=actor, child=child, parents=[ParentSpec(parent, relation)])[0]
