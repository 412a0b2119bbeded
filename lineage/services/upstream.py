"""Lineage from the Hub: the bases an imported card declares become parents, edges re-pinned when
an unresolved reference is imported, and people correcting what an import recorded."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from lineage.models import LineageEdge, Relation, TrainingRun, UpstreamTrainingData
from lineage.services.edges import (
    ParentSpec,
    _propagate_holds,
    _would_close_cycle,
    add_parents,
    check_method_fits,
    check_parent_set,
    require_lineage_write,
    resolve_parents,
)
from lineage.services.shared import lineage_write_lock
from registry.audit import audit_record
from registry.errors import InvalidInput
from registry.models import DatasetVersion, ModelVersion
from registry.plugins import UpstreamParent
from registry.selectors import is_compliance
from registry.types import Actor

# The card field an import's lineage errors name.
CARD_FIELD = "base_model"


def upstream_parents_record(
    actor: Actor, child: ModelVersion, parents: list[UpstreamParent]
) -> list[LineageEdge]:
    """The declared bases of an imported version as its parents (inside the import's
    transaction, which took the lineage lock first)."""
    return add_parents(
        actor=actor,
        child=child,
        parents=[(parent.version, parent.relation) for parent in parents],
        field=CARD_FIELD,
        details=[
            {
                "relation_inferred": parent.inferred,
                "relation_evidence": parent.evidence,
                "parent_newest": parent.newest,
            }
            for parent in parents
        ],
    )


def upstream_training_data_record(
    actor: Actor, version: ModelVersion, dataset_versions: list[DatasetVersion]
) -> list[UpstreamTrainingData]:
    """The Hub datasets an imported card declares as the version's training data (inside the
    import's transaction). Links already there are kept: a reference resolved in place keeps
    what it had."""
    existing = set(
        UpstreamTrainingData.objects.filter(version=version).values_list(
            "dataset_version_id", flat=True
        )
    )
    links = UpstreamTrainingData.objects.bulk_create(
        [
            UpstreamTrainingData(version=version, dataset_version=dataset_version)
            for dataset_version in dict.fromkeys(dataset_versions)
            if dataset_version.pk not in existing
        ]
    )
    if links:
        audit_record(
            actor=actor,
            action="version.upstream_training_data",
            obj=version,
            after={"declared_by_card": [str(link.dataset_version) for link in links]},
        )
    return links


def upstream_reference_resolved(actor: Actor, version: ModelVersion) -> int:
    """Pin the edges that named `version` while it was an unresolved reference to the artefact
    it now has; returns how many. A cycle the newly imported card closes was refused before."""
    edges = list(LineageEdge.objects.filter(parent=version, parent_digest=""))
    for edge in edges:
        edge.parent_digest = version.artefact_digest
        edge.save(update_fields=["parent_digest"])
        audit_record(
            actor=actor,
            action="lineage_edge.resolve",
            obj=edge,
            before={"parent_digest": ""},
            after={"parent_digest": edge.parent_digest, "parent": str(version)},
        )
    return len(edges)


@transaction.atomic
def edge_correct(
    *,
    actor: Actor,
    edge: LineageEdge,
    reason: str,
    relation: str | None = None,
    parent: ModelVersion | int | str | None = None,
) -> LineageEdge:
    """Correct what an import (or a person) recorded on an edge: its relation, its parent, or
    both. The relation then counts as declared by `actor`; compliance staff correcting or
    keeping it confirm it. Engineers of the child's team may correct it in development."""
    lineage_write_lock()
    edge = LineageEdge.objects.select_related("child__model__team", "parent__model").get(pk=edge.pk)
    require_lineage_write(actor, edge.child)
    before = _edge_state(edge)
    edge = edge_corrected(actor=actor, edge=edge, reason=reason, relation=relation, parent=parent)
    edge.save()
    _propagate_holds(edge.child_id, [edge.parent_id])
    audit_record(
        actor=actor,
        action="lineage_edge.correct",
        obj=edge,
        before=before,
        after={**_edge_state(edge), "reason": reason.strip()},
    )
    return edge


def edge_corrected(
    *,
    actor: Actor,
    edge: LineageEdge,
    reason: str,
    relation: str | None,
    parent: ModelVersion | int | str | None,
) -> LineageEdge:
    """`edge` (lock held) as `edge_correct` would save it, every rule checked; not saved."""
    if not reason.strip():
        raise InvalidInput.for_field("reason", "Say why the lineage is corrected (for the audit).")
    if relation is not None and relation not in Relation.values:
        raise InvalidInput.for_field(
            "relation", f"Unknown relation; use one of: {', '.join(Relation.values)}."
        )
    new_relation = relation if relation is not None else edge.relation
    if parent is not None:
        ((new_parent, _),) = resolve_parents(actor, [ParentSpec(parent, new_relation)], "parent")
        if new_parent.pk != edge.parent_id:
            if new_parent.pk == edge.child_id:
                raise InvalidInput.for_field("parent", f"{edge.child} cannot be its own parent.")
            if LineageEdge.objects.filter(child=edge.child, parent=new_parent).exists():
                raise InvalidInput.for_field(
                    "parent", f"{new_parent} is already a parent of {edge.child}."
                )
            if _would_close_cycle(edge.child_id, [new_parent.pk]):
                raise InvalidInput.for_field(
                    "parent",
                    f"{new_parent} descends from {edge.child}; recording it as a parent would "
                    "make a cycle.",
                )
            edge.parent = new_parent
            edge.parent_digest = new_parent.artefact_digest
            edge.parent_newest = False
    others = list(
        LineageEdge.objects.filter(child=edge.child_id)
        .exclude(pk=edge.pk)
        .values_list("relation", flat=True)
    )
    check_parent_set([*others, new_relation], "relation")
    run = TrainingRun.objects.filter(version=edge.child_id).values_list("method", flat=True).first()
    if run is not None:
        check_method_fits(run, [*others, new_relation], "relation")
    edge.relation = new_relation
    edge.relation_inferred = False
    edge.relation_evidence = [f"corrected by {actor.username}: {reason.strip()}"]
    confirmed = is_compliance(actor)
    edge.relation_confirmed_by = actor if confirmed else None
    edge.relation_confirmed_at = timezone.now() if confirmed else None
    return edge


def _edge_state(edge: LineageEdge) -> dict[str, Any]:
    return {
        "parent": edge.parent_id,
        "relation": edge.relation,
        "relation_inferred": edge.relation_inferred,
        "relation_evidence": edge.relation_evidence,
        "parent_digest": edge.parent_digest,
        "confirmed_by": edge.relation_confirmed_by_id,
    }
