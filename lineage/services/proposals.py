"""Lineage changes an engineer may only propose: parents added, a parent edge corrected, a
training run recorded, on a version whose evidence is protected or that left development.

Each `*_submit` service is what the API calls: it makes the change when the actor may
(`lineage_protection`), and otherwise checks the input as the change itself would (bad input is
refused now, not when compliance concludes) and records it as a pending `EvidenceProposal`
(`registry.services.evidence_propose`), changing nothing of the lineage. The kinds registered
in `EVIDENCE_CHANGES` make an accepted proposal's change through the same services, as the
compliance officer who accepted it.
"""

from datetime import datetime
from typing import Any

from django.db import transaction

from lineage.models import DatasetRole, LineageEdge, TrainingRun
from lineage.services.edges import (
    ParentSpec,
    check_new_parents,
    edges_create,
    lineage_protection,
    new_parents_resolved,
)
from lineage.services.shared import lineage_write_lock
from lineage.services.training import (
    DatasetUse,
    check_no_repeats,
    check_run_fields,
    training_run_checked,
    training_run_record,
)
from lineage.services.upstream import edge_correct, edge_corrected
from registry import services as registry_services
from registry.errors import Conflict
from registry.models import EvidenceProposal, ModelVersion, ProposalKind
from registry.plugins import EvidenceChange
from registry.retry import retry_transaction
from registry.types import Actor

# What a new parent's or dataset's licence means for the gate, in the proposal's words.
_PARENT_WEAKENS = "changes the licence obligations {child} inherits"
_DATA_WEAKENS = "changes the data licences the gate checks"


def lineage_state(version: ModelVersion) -> dict[str, Any]:
    """What a lineage proposal is made against (its `before`): the version's parent edges and
    its training run's method. Taken under the lineage lock, kept to the end of the transaction,
    so nothing changes between this and the change an accepted proposal makes."""
    lineage_write_lock()
    parents = LineageEdge.objects.filter(child=version).order_by("pk")
    return {
        "parents": [
            {"edge": edge_id, "parent": parent_id, "relation": relation}
            for edge_id, parent_id, relation in parents.values_list("pk", "parent_id", "relation")
        ],
        "training_run": TrainingRun.objects.filter(version=version)
        .values_list("method", flat=True)
        .first(),
    }


def _version(proposal: EvidenceProposal) -> ModelVersion:
    assert proposal.version is not None  # a DB constraint: only versions have lineage
    return proposal.version


def _licence(version: Any) -> str:
    return version.licence_concluded or version.licence_declared or "no licence"


# --- Parents added --------------------------------------------------------------------------


@retry_transaction
@transaction.atomic
def edges_submit(
    *, actor: Actor, child: ModelVersion, parents: list[ParentSpec], reason: str = ""
) -> list[LineageEdge] | EvidenceProposal:
    """Add parents to `child` (`edges_create`), or propose adding them."""
    lineage_write_lock()
    child = ModelVersion.objects.select_related("model__team").get(pk=child.pk)
    protected = lineage_protection(actor, child)
    if not protected:
        return edges_create(actor=actor, child=child, parents=parents)
    resolved = new_parents_resolved(actor, parents)
    check_new_parents(child=child, parents=resolved, field="parents")
    return registry_services.evidence_propose(
        actor=actor,
        version=child,
        kind=ProposalKind.PARENTS_ADD,
        changes={
            "parents": [
                {"version": parent.pk, "relation": relation} for parent, relation in resolved
            ]
        },
        before=lineage_state(child),
        weakening={
            f"parents[{parent}]": f"adding parent {parent} ({relation}, licence "
            f"{_licence(parent)}) " + _PARENT_WEAKENS.format(child=child)
            for parent, relation in resolved
        },
        protected_because=protected,
        reason=reason,
    )


def _parents_add(actor: Actor, proposal: EvidenceProposal) -> None:
    edges_create(
        actor=actor,
        child=_version(proposal),
        parents=[
            ParentSpec(parent["version"], parent["relation"])
            for parent in proposal.changes["parents"]
        ],
    )


# --- A parent edge corrected ----------------------------------------------------------------


@transaction.atomic
def edge_correction_submit(
    *,
    actor: Actor,
    edge: LineageEdge,
    reason: str,
    relation: str | None = None,
    parent: ModelVersion | int | str | None = None,
) -> LineageEdge | EvidenceProposal:
    """Correct an edge (`edge_correct`), or propose the correction; `reason` is the
    proposal's too."""
    lineage_write_lock()
    edge = LineageEdge.objects.select_related("child__model__team", "parent__model").get(pk=edge.pk)
    child, was_parent, was_relation = edge.child, edge.parent, edge.relation
    protected = lineage_protection(actor, child)
    if not protected:
        return edge_correct(actor=actor, edge=edge, reason=reason, relation=relation, parent=parent)
    edge = edge_corrected(actor=actor, edge=edge, reason=reason, relation=relation, parent=parent)
    if edge.parent_id != was_parent.pk:
        weakening = {
            f"parents[{was_parent}]": f"replacing parent {was_parent} with {edge.parent} "
            f"(licence {_licence(edge.parent)}) " + _PARENT_WEAKENS.format(child=child)
        }
    elif edge.relation != was_relation:
        weakening = {
            f"parents[{was_parent}]": f"changing the relation to {was_parent} from "
            f"{was_relation} to {edge.relation} changes how the lineage check judges it"
        }
    else:
        weakening = {
            f"parents[{was_parent}]": f"declaring the relation to {was_parent} "
            f"({edge.relation}) instead of inferring it changes how the lineage check judges it"
        }
    return registry_services.evidence_propose(
        actor=actor,
        version=child,
        kind=ProposalKind.EDGE_CORRECT,
        changes={
            "edge": edge.pk,
            "parent": edge.parent_id,
            "relation": edge.relation,
            "reason": reason.strip(),
        },
        before=lineage_state(child),
        weakening=weakening,
        protected_because=protected,
        reason=reason,
    )


def _edge_correct(actor: Actor, proposal: EvidenceProposal) -> None:
    changes = proposal.changes
    edge_correct(
        actor=actor,
        edge=LineageEdge.objects.get(pk=changes["edge"]),
        reason=f"{changes['reason']} (proposal #{proposal.pk} by {proposal.proposed_by})",
        relation=changes["relation"],
        parent=changes["parent"],
    )


# --- A training run recorded ----------------------------------------------------------------

_RUN_TIMES = ("started_at", "finished_at")


@retry_transaction
@transaction.atomic
def training_run_submit(
    *, actor: Actor, version: ModelVersion, reason: str = "", **run: Any
) -> TrainingRun | EvidenceProposal:
    """Record the run that produced `version` (`training_run_record`, whose keyword arguments
    `run` holds), or propose recording it."""
    version = ModelVersion.objects.select_related("model__team").get(pk=version.pk)
    protected = lineage_protection(actor, version)
    if not protected:
        return training_run_record(actor=actor, version=version, **run)
    lineage_write_lock()
    run = {
        **run,
        "hyperparameters": dict(run.get("hyperparameters") or {}),
        "framework_versions": dict(run.get("framework_versions") or {}),
    }
    datasets, run_by = run.pop("datasets", ()), run.pop("run_by", None)
    resolved, user = training_run_checked(
        actor=actor,
        version=version,
        method=run["method"],
        hyperparameters=run["hyperparameters"],
        framework_versions=run["framework_versions"],
        datasets=datasets,
        started_at=run.get("started_at"),
        finished_at=run.get("finished_at"),
        run_by=run_by,
    )
    check_no_repeats(resolved, prefix="")
    check_run_fields(run, prefix="")
    if TrainingRun.objects.filter(version=version).exists():
        raise Conflict.for_field("version", f"{version} already has its training run recorded.")
    weakening = {
        "training_run": f"recording how {version} was made ({run['method']}) changes the "
        "lineage the gate checks"
    }
    weakening |= {
        f"training_data[{dataset_version}]": f"recording {dataset_version} (licence "
        f"{_licence(dataset_version)}) as {role} data " + _DATA_WEAKENS
        for dataset_version, role in resolved
        if role == DatasetRole.TRAIN
    }
    changes = {
        **run,
        **{key: run[key].isoformat() for key in _RUN_TIMES if run.get(key)},
        "datasets": [
            {"dataset_version": dataset_version.pk, "role": role}
            for dataset_version, role in resolved
        ],
        "run_by": user.username,
    }
    return registry_services.evidence_propose(
        actor=actor,
        version=version,
        kind=ProposalKind.TRAINING_RUN,
        changes=changes,
        before=lineage_state(version),
        weakening=weakening,
        protected_because=protected,
        reason=reason,
    )


def _training_run_record(actor: Actor, proposal: EvidenceProposal) -> None:
    run = dict(proposal.changes)
    run["datasets"] = [DatasetUse(use["dataset_version"], use["role"]) for use in run["datasets"]]
    for key in _RUN_TIMES:
        if run.get(key):
            run[key] = datetime.fromisoformat(run[key])
    training_run_record(actor=actor, version=_version(proposal), **run)


EVIDENCE_CHANGES = (
    EvidenceChange(ProposalKind.PARENTS_ADD, lineage_state, _parents_add),
    EvidenceChange(ProposalKind.EDGE_CORRECT, lineage_state, _edge_correct),
    EvidenceChange(ProposalKind.TRAINING_RUN, lineage_state, _training_run_record),
)
