"""Evidence-change proposals: an engineer's edit that could weaken protected gate evidence is
recorded, not applied, until compliance staff outside the owning team conclude it.

`version_edit` and `dataset_version_edit` are the edits of the API and the admin: a change
anyone may make is made (`version_update`, `dataset_version_update`); a change that could weaken
a check of protected evidence (`registry.evidence.weakening_changes`, `evidence_protection`) by
someone who is not compliance staff becomes a pending `EvidenceProposal`, and nothing of the
evidence changes. Accepting one makes the change through the same update service, as the
officer who concluded it, so the approvals it touches stop counting (their evidence snapshot
differs, and the gate names what changed) and the versions using it are rechecked.

Changes to a version's lineage (parents, training data) are the lineage app's: it validates
them, records them with `evidence_propose` under a kind it registers (`EvidenceChange`), and
makes them on acceptance through its own services.
"""

import copy
from typing import Any

from django.db import transaction
from django.utils import timezone

from registry.audit import audit_record
from registry.errors import Conflict, InvalidInput, PermissionRefused
from registry.evidence import evidence_protection, evidence_user_ids, weakening_changes
from registry.gates import duty_conflict
from registry.models import (
    DatasetVersion,
    EvidenceProposal,
    ModelVersion,
    ProposalKind,
    ProposalStatus,
)
from registry.plugins import EvidenceChange, plugins
from registry.retry import retry_transaction
from registry.selectors import is_compliance, is_team_member
from registry.services._common import apply_changes
from registry.services.catalogue import (
    COMPLIANCE_ONLY_FIELDS,
    DATASET_VERSION_UPDATABLE,
    VERSION_UPDATABLE,
    dataset_version_changes_checked,
    dataset_version_update,
    version_changes_checked,
    version_update,
)
from registry.services.compliance import compliance_recheck_after_commit
from registry.services.events import event_publish
from registry.types import Actor

MAX_REASON = 4000


@transaction.atomic
def version_edit(
    *, actor: Actor, version: ModelVersion, changes: dict[str, Any], reason: str = ""
) -> ModelVersion | EvidenceProposal:
    """Edit a version, or propose the edit when it could weaken protected evidence (the whole
    edit becomes the proposal: nothing of it is applied until compliance accepts it)."""
    checked = version_changes_checked(actor=actor, version=version, changes=changes)
    proposal = _proposal_if_needed(
        actor, version, checked, VERSION_UPDATABLE | COMPLIANCE_ONLY_FIELDS, reason
    )
    if proposal is not None:
        return proposal
    return version_update(actor=actor, version=version, changes=changes)


@transaction.atomic
def dataset_version_edit(
    *, actor: Actor, dataset_version: DatasetVersion, changes: dict[str, Any], reason: str = ""
) -> DatasetVersion | EvidenceProposal:
    """Edit a dataset version, or propose the edit, as `version_edit`."""
    checked = dataset_version_changes_checked(
        actor=actor, dataset_version=dataset_version, changes=changes
    )
    proposal = _proposal_if_needed(
        actor, dataset_version, checked, DATASET_VERSION_UPDATABLE | COMPLIANCE_ONLY_FIELDS, reason
    )
    if proposal is not None:
        return proposal
    return dataset_version_update(actor=actor, dataset_version=dataset_version, changes=changes)


def _proposal_if_needed(
    actor: Actor,
    target: ModelVersion | DatasetVersion,
    changes: dict[str, Any],
    allowed: set[str],
    reason: str,
) -> EvidenceProposal | None:
    if is_compliance(actor):
        return None
    weakening = weakening_changes(target, changes)
    protected = evidence_protection(target) if weakening else None
    if not protected:
        return None
    _check_reason(reason)
    # Bad values are refused now, as the edit itself would be, not when compliance accepts.
    apply_changes(copy.copy(target), changes, allowed)
    return _proposal_record(
        actor,
        target,
        kind=ProposalKind.FIELDS,
        changes=changes,
        before={field: getattr(target, field) for field in changes},
        weakening=weakening,
        protected_because=protected,
        reason=reason,
    )


def evidence_propose(
    *,
    actor: Actor,
    version: ModelVersion,
    kind: str,
    changes: dict[str, Any],
    before: dict[str, Any],
    weakening: dict[str, str],
    protected_because: str,
    reason: str = "",
) -> EvidenceProposal:
    """Record a change to `version`'s evidence that an app validated but may not make yet (its
    `EvidenceChange` of `kind` makes it on acceptance): `changes` is the validated input as JSON,
    `before` what `current(version)` is now, `weakening` why it could weaken a check."""
    _check_reason(reason)
    return _proposal_record(
        actor,
        version,
        kind=kind,
        changes=changes,
        before=before,
        weakening=weakening,
        protected_because=protected_because,
        reason=reason,
    )


def _check_reason(reason: str) -> None:
    if len(reason) > MAX_REASON:
        raise InvalidInput.for_field("reason", f"Say why in at most {MAX_REASON} characters.")


def _proposal_record(
    actor: Actor, target: ModelVersion | DatasetVersion, *, reason: str, **proposed: Any
) -> EvidenceProposal:
    proposal = EvidenceProposal.objects.create(
        version=target if isinstance(target, ModelVersion) else None,
        dataset_version=target if isinstance(target, DatasetVersion) else None,
        reason=reason.strip(),
        proposed_by=actor,
        **proposed,
    )
    audit_record(
        actor=actor,
        action="evidence.propose",
        obj=target,
        after={
            "proposal": proposal.pk,
            "kind": proposal.kind,
            "changes": proposal.changes,
            "before": proposal.before,
            "weakening": proposal.weakening,
            "reason": proposal.reason,
        },
    )
    _publish(proposal, "evidence.proposed", actor)
    return proposal


def proposal_conflict(actor: Actor, proposal: EvidenceProposal) -> str | None:
    """Why `actor` may not conclude `proposal`, or None: nobody concludes their own proposal or
    one on their team's evidence (separation of duties, as approvals and waivers)."""
    if actor.pk == proposal.proposed_by_id:
        return f"{actor.username} proposed this change"
    target = proposal.target
    if isinstance(target, ModelVersion):
        return duty_conflict(actor, target)
    if actor.pk == target.registered_by_id:
        return f"{actor.username} registered {target}"
    if is_team_member(actor, target.dataset.team_id):
        team = target.dataset.team.slug
        return f"{actor.username} is a member of team '{team}', which owns {target}"
    return None


def _pending_locked(actor: Actor, proposal: EvidenceProposal, what: str) -> EvidenceProposal:
    if not is_compliance(actor):
        raise PermissionRefused(f"Only compliance staff can {what} evidence-change proposals.")
    locked = (
        EvidenceProposal.objects.select_for_update(of=("self",))
        .select_related("version__model__team", "dataset_version__dataset__team")
        .get(pk=proposal.pk)
    )
    conflict = proposal_conflict(actor, locked)
    if conflict:
        raise PermissionRefused(
            f"{conflict}, so cannot {what} it (separation of duties); a compliance officer "
            "outside the owning team must conclude it.",
            code="duty_conflict",
        )
    if locked.status != ProposalStatus.PENDING:
        raise Conflict(
            f"Proposal #{locked.pk} was already {locked.status} by "
            f"{locked.concluded_by.username if locked.concluded_by else 'someone'}; "
            "nothing was changed.",
            code="already_concluded",
        )
    return locked


def _stale(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    return [
        f"{key}: proposed from {old!r}, now {now.get(key)!r}"
        for key, old in before.items()
        if now.get(key) != old
    ]


def _evidence_change(proposal: EvidenceProposal) -> EvidenceChange:
    for change in plugins.contributions(EvidenceChange):
        if change.kind == proposal.kind:
            return change
    raise Conflict(
        f"Proposal #{proposal.pk} changes '{proposal.kind}', which no installed app makes; "
        "reject it.",
        code="proposal_kind_unavailable",
    )


@retry_transaction
@transaction.atomic
def evidence_proposal_accept(
    *, actor: Actor, proposal: EvidenceProposal, comment: str = ""
) -> EvidenceProposal:
    """Make the proposed change as `actor`, through the service any such change goes through
    (the update services, or the app's for a lineage change): the approvals it touches stop
    counting and the versions using the evidence are rechecked."""
    _refuse_long(comment)
    proposal = _pending_locked(actor, proposal, "accept")
    target = proposal.target
    change = None if proposal.kind == ProposalKind.FIELDS else _evidence_change(proposal)
    if change is not None:
        assert isinstance(target, ModelVersion)  # a DB constraint: only versions have lineage
        now = change.current(target)
    else:
        now = {field: getattr(target, field) for field in proposal.before}
    stale = _stale(proposal.before, now)
    if stale:
        raise Conflict(
            f"The evidence changed since proposal #{proposal.pk} was made ({'; '.join(stale)}); "
            "reject it and propose the change again against what is there now.",
            code="proposal_stale",
        )
    if change is not None:
        change.apply(actor, proposal)
        compliance_recheck_after_commit([target.pk, *evidence_user_ids(target)])
    elif isinstance(target, ModelVersion):
        version_update(actor=actor, version=target, changes=proposal.changes)
    else:
        dataset_version_update(actor=actor, dataset_version=target, changes=proposal.changes)
    return _conclude(actor, proposal, ProposalStatus.ACCEPTED, comment)


@retry_transaction
@transaction.atomic
def evidence_proposal_reject(
    *, actor: Actor, proposal: EvidenceProposal, comment: str
) -> EvidenceProposal:
    """Refuse the proposed change; the evidence stays as it is."""
    if not comment.strip():
        raise InvalidInput.for_field("comment", "Say why the change is rejected.")
    _refuse_long(comment)
    proposal = _pending_locked(actor, proposal, "reject")
    return _conclude(actor, proposal, ProposalStatus.REJECTED, comment)


def _refuse_long(comment: str) -> None:
    if len(comment) > MAX_REASON:
        raise InvalidInput.for_field("comment", f"Say it in at most {MAX_REASON} characters.")


def _conclude(
    actor: Actor, proposal: EvidenceProposal, status: str, comment: str
) -> EvidenceProposal:
    proposal.status = status
    proposal.concluded_by = actor
    proposal.concluded_at = timezone.now()
    proposal.conclusion = comment.strip()
    proposal.save(update_fields=["status", "concluded_by", "concluded_at", "conclusion"])
    verb = "accept" if status == ProposalStatus.ACCEPTED else "reject"
    audit_record(
        actor=actor,
        action=f"evidence.proposal_{verb}",
        obj=proposal.target,
        before={"proposal": proposal.pk, "status": ProposalStatus.PENDING},
        after={
            "proposal": proposal.pk,
            "status": status,
            "kind": proposal.kind,
            "changes": proposal.changes,
            "comment": proposal.conclusion,
        },
    )
    _publish(proposal, f"evidence.proposal_{status}", actor)
    return proposal


def _publish(proposal: EvidenceProposal, kind: str, actor: Actor) -> None:
    event_publish(
        kind=kind,
        payload={
            "proposal": proposal.pk,
            "target": str(proposal.target),
            "kind": proposal.kind,
            "changes": proposal.changes,
            "weakening": proposal.weakening,
            "by": actor.username,
        },
    )
