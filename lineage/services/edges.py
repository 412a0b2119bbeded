"""Writes of derivation edges: the rules on a version's set of parents, the cycle check, and
the holds a new child inherits from its parents."""

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from functools import reduce
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from lineage.models import LineageEdge, Relation, TrainingRun
from lineage.schemas import METHODS_FOR_RELATION
from lineage.selectors import marks, seed_sql, sql, walk_cte
from lineage.services.shared import lineage_write_lock
from registry import services as registry_services
from registry.audit import audit_record_many
from registry.errors import Conflict, FieldErrors, InvalidInput, PermissionRefused
from registry.evidence import evidence_protection
from registry.models import ModelVersion
from registry.retry import retry_transaction
from registry.selectors import as_id, is_compliance, versions_visible_to
from registry.types import Actor

# A generous bound that keeps one request's work (one lookup per reference) small.
MAX_PARENTS = 32


@dataclass(frozen=True)
class ParentSpec:
    """A parent to record: a version (object, id, or `MODEL@LABEL` / `MODEL@HUB_REVISION`)."""

    version: ModelVersion | int | str
    relation: str


def _version_lookup(ref: ModelVersion | int | str) -> Q | None:
    """What `ref` may match: an id, `MODEL@LABEL` or `MODEL@<40-character hub revision>`."""
    if isinstance(ref, ModelVersion):
        return Q(pk=ref.pk)
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        pk = as_id(str(ref))
        return Q(pk=pk) if pk is not None else None
    if isinstance(ref, str):
        name, sep, label = ref.strip().rpartition("@")
        if sep and name and label:
            by_label = Q(model__name=name, version=label)
            by_revision = Q(model__name=name, hub_revision=label)
            return by_label | by_revision if len(label) == 40 else by_label
    return None


def _match_version(
    ref: ModelVersion | int | str, found: Sequence[ModelVersion]
) -> list[ModelVersion]:
    """The versions among `found` that `ref` names (a label wins over a hub revision)."""
    if isinstance(ref, ModelVersion | int) or ref.isdigit():
        pk = ref.pk if isinstance(ref, ModelVersion) else int(ref)
        return [version for version in found if version.pk == pk]
    name, _, label = ref.strip().rpartition("@")
    named = [version for version in found if version.model.name == name]
    by_label = [version for version in named if version.version == label]
    return by_label or [version for version in named if version.hub_revision == label]


def _resolve_versions(
    actor: Actor, refs: Sequence[ModelVersion | int | str], field: str
) -> list[ModelVersion]:
    """The visible version each of `refs` names, in one query; every unknown one at once."""
    lookups = [_version_lookup(ref) for ref in refs]
    wanted = [lookup for lookup in lookups if lookup is not None]
    # Only the model (a parent's name) is read of what the visible versions join.
    visible = versions_visible_to(actor).select_related(None).select_related("model")
    found = list(visible.filter(reduce(operator.or_, wanted))) if wanted else []
    errors = FieldErrors()
    resolved = []
    for index, (ref, lookup) in enumerate(zip(refs, lookups, strict=True)):
        where = f"{field}[{index}].version"
        matches = _match_version(ref, found) if lookup is not None else []
        if len(matches) > 1:
            errors.add(
                InvalidInput.for_field(
                    where, f"{ref} matches several versions; name one as MODEL@VERSION."
                )
            )
        elif not matches:
            errors.add(
                InvalidInput.for_field(
                    where,
                    f"No version {ref!s} that you can see. Name a pinned version as "
                    "MODEL@VERSION (or MODEL@<40-character hub revision>, or its numeric id).",
                )
            )
        else:
            resolved.append(matches[0])
    errors.raise_if_any()
    return resolved


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
    if Relation.UNKNOWN in relations:
        return  # the shape cannot be judged until someone says how the child was made
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


def check_new_parents(
    *,
    child: ModelVersion,
    parents: Sequence[tuple[ModelVersion, str]],
    field: str,
    new_child: bool = False,
) -> None:
    """What `add_parents` checks before writing (lock held): no parent twice or already there,
    a valid set of parents fitting the training run's method, no cycle."""
    existing: dict[int, str] = (
        {}
        if new_child
        else dict(LineageEdge.objects.filter(child=child).values_list("parent_id", "relation"))
    )
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
    run = (
        None
        if new_child
        else TrainingRun.objects.filter(version=child).values_list("method", flat=True).first()
    )
    if run is not None:
        check_method_fits(run, relations, field)
    if not new_child and _would_close_cycle(child.pk, [parent.pk for parent, _ in parents]):
        names = ", ".join(str(parent) for parent, _ in parents)
        raise InvalidInput.for_field(
            field,
            f"Recording {names} as parent of {child} would make a cycle: {child} is already "
            f"an ancestor of {names}. Lineage points from a version to what it was made from.",
        )


def add_parents(
    *,
    actor: Actor,
    child: ModelVersion,
    parents: Sequence[tuple[ModelVersion, str]],
    field: str,
    new_child: bool = False,
    details: Sequence[dict[str, Any]] | None = None,
) -> list[LineageEdge]:
    """Record resolved parents of `child` (lock held, permissions checked by the caller);
    `details` holds further edge fields, one dict per parent (how an import found it).

    `new_child`: `child` was created in this transaction, so it has no parents, training run or
    descendants yet, and none of them needs reading (nor can a new edge close a cycle).
    """
    check_new_parents(child=child, parents=parents, field=field, new_child=new_child)
    edges = [
        LineageEdge(
            child=child,
            parent=parent,
            relation=relation,
            parent_digest=parent.artefact_digest,
            created_by=actor,
            **(details[index] if details else {}),
        )
        for index, (parent, relation) in enumerate(parents)
    ]
    try:
        # No savepoint: the Conflict leaves the caller's transaction, which rolls back.
        LineageEdge.objects.bulk_create(edges)
    except IntegrityError as error:
        raise Conflict.for_field(
            field, f"The parents of {child} changed meanwhile; reload and try again."
        ) from error
    inherited = _propagate_holds(child.pk, [parent.pk for parent, _ in parents])
    audit_record_many(
        actor=actor,
        action="lineage_edge.create",
        changes=[
            (
                edge,
                {
                    "child": edge.child_id,
                    "parent": edge.parent_id,
                    "relation": edge.relation,
                    "parent_digest": edge.parent_digest,
                    "relation_inferred": edge.relation_inferred,
                    "relation_evidence": edge.relation_evidence,
                    "parent_newest": edge.parent_newest,
                    "holds_inherited": inherited,
                },
            )
            for edge in edges
        ],
    )
    return edges


def lineage_protection(actor: Actor, version: ModelVersion) -> str | None:
    """Why `actor` may only propose changes to `version`'s parents and training data (for
    compliance staff to conclude), or None when they may make them. Parents and training data
    are gate evidence (a different parent or dataset can carry a different licence): the
    version's team records them while it is in development and its evidence is unprotected;
    compliance staff may change them at any time. Refuses anyone else."""
    if is_compliance(actor):
        return None
    registry_services.require_team_write(actor, version.model.team)
    if version.stage != "development":
        return f"{version} is in {version.stage} (its lineage is frozen once it leaves development)"
    return evidence_protection(version)


def require_lineage_write(actor: Actor, version: ModelVersion) -> None:
    """For the services that make the change: only those `lineage_protection` lets through."""
    protected = lineage_protection(actor, version)
    if protected:
        raise PermissionRefused(
            f"The lineage of {version} is gate evidence and {protected}: changing its parents "
            "or training data could weaken a gate check, so only compliance staff can make "
            "this change; propose it through the API instead.",
            code="evidence_protected",
        )


def resolve_parents(
    actor: Actor, parents: Sequence[ParentSpec], field: str
) -> list[tuple[ModelVersion, str]]:
    """Each parent a registration names, with its relation; every unknown one at once."""
    if len(parents) > MAX_PARENTS:
        raise InvalidInput.for_field(field, f"Name at most {MAX_PARENTS} parents.")
    versions = _resolve_versions(actor, [spec.version for spec in parents], field)
    return [(version, spec.relation) for version, spec in zip(versions, parents, strict=True)]


@retry_transaction
@transaction.atomic
def edges_create(
    *, actor: Actor, child: ModelVersion, parents: Sequence[ParentSpec]
) -> list[LineageEdge]:
    """Add parents to `child` in one go (a merge's parents must come together)."""
    lineage_write_lock()
    child = ModelVersion.objects.select_related("model__team").get(pk=child.pk)
    require_lineage_write(actor, child)
    resolved = new_parents_resolved(actor, parents)
    return add_parents(actor=actor, child=child, parents=resolved, field="parents")


def new_parents_resolved(
    actor: Actor, parents: Sequence[ParentSpec]
) -> list[tuple[ModelVersion, str]]:
    """The parents an `edges_create` names, resolved."""
    if not parents:
        raise InvalidInput.for_field("parents", "Name at least one parent.")
    return resolve_parents(actor, parents, "parents")


def edge_create(
    *, actor: Actor, child: ModelVersion, parent: ModelVersion | int | str, relation: str
) -> LineageEdge:
    """Add one parent to `child`."""
    return edges_create(actor=actor, child=child, parents=[ParentSpec(parent, relation)])[0]
