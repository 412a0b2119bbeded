"""Governance: approvals, check waivers, promotion through the gate, and stage policies."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from registry.audit import audit_record
from registry.errors import InvalidInput, PermissionRefused
from registry.evidence import evidence_snapshot
from registry.gates import (
    DISTRIBUTIONS,
    UNWAIVABLE,
    USES,
    GateEvaluation,
    duty_conflict,
    failing_checks,
    gate_evaluate,
    registered_checks,
)
from registry.models import (
    Approval,
    ApprovalDecision,
    CheckWaiver,
    GateDecision,
    ModelVersion,
    RegisteredModel,
    Stage,
    StagePolicy,
)
from registry.retry import retry_transaction
from registry.selectors import is_compliance, is_team_member
from registry.services._common import apply_changes, snapshot
from registry.services.compliance import compliance_recheck_after_commit
from registry.services.events import event_publish
from registry.services.upstream_bases import require_resolved
from registry.types import Actor


def _require_compliance(actor: Actor, what: str) -> None:
    if not is_compliance(actor):
        raise PermissionRefused(f"Only compliance staff can {what}.")


def _refuse_duty_conflict(actor: Actor, version: ModelVersion, what: str) -> None:
    conflict = duty_conflict(actor, version)
    if conflict:
        raise PermissionRefused(
            f"{conflict}, so cannot {what} (separation of duties); "
            "a compliance officer outside the owning team must review it."
        )


@retry_transaction
@transaction.atomic
def approval_record(
    *,
    actor: Actor,
    version: ModelVersion,
    stage: str,
    decision: str = "approve",
    comment: str = "",
    valid_days: int | None = None,
    attestations: Sequence[str] = (),
) -> Approval:
    _require_compliance(actor, "approve or reject versions")
    require_resolved(version)
    _refuse_duty_conflict(actor, version, "approve it")
    if stage not in Stage.values or stage == Stage.DEVELOPMENT:
        raise InvalidInput.for_field("stage", "Approve for one of: staging, production.")
    if decision not in ApprovalDecision.values:
        raise InvalidInput.for_field("decision", "Use 'approve' or 'reject'.")
    if decision == ApprovalDecision.REJECT and not comment.strip():
        raise InvalidInput.for_field("comment", "Say why the version is rejected.")
    attested = sorted({item.strip() for item in attestations})
    if attested and (decision != ApprovalDecision.APPROVE or stage != Stage.PRODUCTION):
        raise InvalidInput.for_field(
            "attestations", "Only an approval for production carries attestations."
        )
    if any(not item or len(item) > 200 for item in attested):
        raise InvalidInput.for_field(
            "attestations",
            "Name each attestation as the licence check does (1 to 200 characters), "
            "e.g. 'LicenseRef-Llama-3.1 user_threshold'.",
        )
    days = valid_days if valid_days is not None else settings.PEDIGREE_APPROVAL_VALID_DAYS
    if not 1 <= days <= settings.PEDIGREE_APPROVAL_VALID_DAYS:
        raise InvalidInput.for_field(
            "valid_days", f"Approvals last 1 to {settings.PEDIGREE_APPROVAL_VALID_DAYS} days."
        )
    now = timezone.now()
    approval = Approval.objects.create(
        version=version,
        stage=stage,
        decision=decision,
        comment=comment,
        artefact_digest=version.artefact_digest,
        approver=actor,
        expires_at=now + timedelta(days=days),
        evidence=evidence_snapshot(version, stage),
        attestations=attested,
    )
    audit_record(
        actor=actor,
        action=f"approval.{decision}",
        obj=version,
        after={
            "approval": approval.pk,
            "stage": stage,
            "digest": version.artefact_digest,
            "expires_at": approval.expires_at,
            "comment": comment,
            "attestations": attested,
        },
    )
    event_publish(
        kind=f"version.{'approved' if decision == 'approve' else 'rejected'}",
        payload={"version": str(version), "stage": stage, "by": actor.username, "comment": comment},
    )
    compliance_recheck_after_commit([version.pk])
    return approval


@retry_transaction
@transaction.atomic
def check_waiver_grant(
    *, actor: Actor, version: ModelVersion, check_name: str, reason: str, expires_at: datetime
) -> CheckWaiver:
    _require_compliance(actor, "waive gate checks")
    require_resolved(version)
    _refuse_duty_conflict(actor, version, "waive its checks")
    if not reason.strip():
        raise InvalidInput.for_field("reason", "A waiver needs a reason compliance can stand by.")
    now = timezone.now()
    if expires_at <= now:
        raise InvalidInput.for_field("expires_at", "The expiry must be in the future.")
    if expires_at > now + timedelta(days=settings.PEDIGREE_WAIVER_MAX_DAYS):
        raise InvalidInput.for_field(
            "expires_at", f"Waivers last at most {settings.PEDIGREE_WAIVER_MAX_DAYS} days."
        )
    if check_name in UNWAIVABLE:
        remedy = (
            "the required compliance approvals must be given"
            if check_name == "approvals"
            else "change the stage policy instead"
        )
        raise InvalidInput.for_field(
            "check", f"The '{check_name}' check cannot be waived; {remedy}."
        )
    if check_name not in registered_checks():
        raise InvalidInput.for_field(
            "check",
            f"Unknown check '{check_name}'; one of: {', '.join(sorted(registered_checks()))}.",
        )
    waiver = CheckWaiver.objects.create(
        version=version,
        check_name=check_name,
        reason=reason,
        granted_by=actor,
        artefact_digest=version.artefact_digest,
        expires_at=expires_at,
    )
    audit_record(
        actor=actor,
        action="waiver.grant",
        obj=version,
        after={
            "waiver": waiver.pk,
            "check": check_name,
            "reason": reason,
            "expires_at": expires_at,
        },
    )
    compliance_recheck_after_commit([version.pk])
    return waiver


@retry_transaction
@transaction.atomic
def check_waiver_revoke(*, actor: Actor, waiver: CheckWaiver) -> CheckWaiver:
    _require_compliance(actor, "revoke waivers")
    if waiver.revoked_at is None:
        waiver.revoked_at = timezone.now()
        waiver.save(update_fields=["revoked_at"])
        audit_record(
            actor=actor,
            action="waiver.revoke",
            obj=waiver.version,
            after={"waiver": waiver.pk, "check": waiver.check_name},
        )
        compliance_recheck_after_commit([waiver.version_id])
    return waiver


@dataclass(frozen=True)
class _Verdict:
    """The gate's evaluation plus the rule only promotion applies: a model that allows one
    production version keeps it unless the promotion replaces it."""

    evaluation: GateEvaluation
    results: list[dict[str, Any]]
    passed: bool
    exclusive: bool
    # Production versions archived if the promotion goes ahead.
    displaced: list[ModelVersion]

    @property
    def failed_checks(self) -> list[str]:
        return [row["check"] for row in failing_checks(self.results)]


@retry_transaction
@transaction.atomic
def version_promote(
    *,
    actor: Actor,
    version: ModelVersion,
    stage: str,
    justification: str = "",
    use: str = "commercial",
    distribution: str = "hosted",
    replace_production: bool = False,
) -> GateDecision:
    """Run every gate check with the version row locked; move the stage only if all pass.

    The decision is recorded either way (and audited); the caller tells a refusal by
    `decision.passed`.
    """
    _refuse_unknown_target(stage=stage, use=use, distribution=distribution)
    version = _lock_for_promotion(version)
    _require_promoter(actor, version)
    require_resolved(version)
    if version.stage == stage:
        # A re-run release job: the decision that brought it here answers, nothing is recorded.
        arrived = (
            GateDecision.objects.filter(version=version, to_stage=stage, passed=True)
            .order_by("-decided_at", "-id")
            .first()
        )
        if arrived is not None:
            return arrived
    verdict = _judge(
        actor=actor,
        version=version,
        stage=stage,
        use=use,
        distribution=distribution,
        replace_production=replace_production,
    )
    decision = _decision_record(
        actor=actor, version=version, verdict=verdict, justification=justification
    )
    if verdict.passed:
        _stage_move(
            actor=actor,
            version=version,
            verdict=verdict,
            decision=decision,
            justification=justification,
        )
        compliance_recheck_after_commit([version.pk, *(old.pk for old in verdict.displaced)])
    else:
        _refusal_audit(actor=actor, version=version, verdict=verdict, decision=decision)
        # The refused stage becomes the one its standing is judged against (blocked, awaiting).
        compliance_recheck_after_commit([version.pk])
    _promotion_publish(actor=actor, version=version, verdict=verdict, decision=decision)
    return decision


def _refuse_unknown_target(*, stage: str, use: str, distribution: str) -> None:
    if stage not in Stage.values:
        raise InvalidInput.for_field("stage", f"Unknown stage; one of: {', '.join(Stage.values)}.")
    if use not in USES:
        raise InvalidInput.for_field("use", f"Unknown use; one of: {', '.join(USES)}.")
    if distribution not in DISTRIBUTIONS:
        raise InvalidInput.for_field(
            "distribution", f"Unknown distribution; one of: {', '.join(DISTRIBUTIONS)}."
        )


def _lock_for_promotion(version: ModelVersion) -> ModelVersion:
    """The version re-read under lock, as the gate will judge it (lock order: see "Lock order"
    in docs/architecture.md)."""
    # Lock the model row first: concurrent promotions of its versions queue up here. NO KEY
    # UPDATE locks leave rows that reference these (holds, approvals, decisions, new versions
    # and edges) free to be inserted meanwhile: their foreign-key checks only need KEY SHARE.
    RegisteredModel.objects.select_for_update(no_key=True).get(pk=version.model_id)
    return (
        ModelVersion.objects.select_for_update(no_key=True, of=("self",))
        .select_related("model", "model__team", "registered_by")
        .get(pk=version.pk)
    )


def _require_promoter(actor: Actor, version: ModelVersion) -> None:
    if not (is_compliance(actor) or is_team_member(actor, version.model.team_id)):
        raise PermissionRefused(
            f"Only members of team '{version.model.team.slug}' or compliance staff can promote "
            f"{version}."
        )


def _judge(
    *,
    actor: Actor,
    version: ModelVersion,
    stage: str,
    use: str,
    distribution: str,
    replace_production: bool,
) -> _Verdict:
    evaluation = gate_evaluate(
        version=version, stage=stage, use=use, distribution=distribution, actor=actor
    )
    results = evaluation.results
    passed = evaluation.passed
    exclusive = not version.model.allow_multiple_production
    displaced: list[ModelVersion] = []
    if stage == Stage.PRODUCTION and exclusive:
        displaced = list(
            ModelVersion.objects.filter(model_id=version.model_id, stage=Stage.PRODUCTION).exclude(
                pk=version.pk
            )
        )
        if displaced and not replace_production:
            passed = False
            results = [*results, _single_production_failure(displaced)]
    return _Verdict(evaluation, results, passed, exclusive, displaced)


def _single_production_failure(displaced: list[ModelVersion]) -> dict[str, Any]:
    return {
        "check": "single_production",
        "passed": False,
        "required": True,
        "waiver": None,
        "evidence": {"in_production": [str(v) for v in displaced]},
        "reasons": [
            f"{displaced[0]} is already in production and the model allows one "
            "production version; archive it first or pass replace_production"
        ],
    }


def _decision_record(
    *, actor: Actor, version: ModelVersion, verdict: _Verdict, justification: str
) -> GateDecision:
    evaluation = verdict.evaluation
    return GateDecision.objects.create(
        version=version,
        from_stage=version.stage,
        to_stage=evaluation.to_stage,
        use=evaluation.use,
        distribution=evaluation.distribution,
        passed=verdict.passed,
        results=verdict.results,
        artefact_digest=version.artefact_digest,
        policy=evaluation.policy,
        justification=justification,
        actor=actor,
    )


def _stage_move(
    *,
    actor: Actor,
    version: ModelVersion,
    verdict: _Verdict,
    decision: GateDecision,
    justification: str,
) -> None:
    """Archive the production versions the promotion replaces, then move the version."""
    stage = decision.to_stage
    for old in verdict.displaced:
        old.stage = Stage.ARCHIVED
        old.save(update_fields=["stage", "updated_at"])
        audit_record(
            actor=actor,
            action="version.archive",
            obj=old,
            before={"stage": Stage.PRODUCTION},
            after={"stage": Stage.ARCHIVED, "replaced_by": str(version)},
        )
    before = {"stage": version.stage}
    version.stage = stage
    version.production_exclusive = verdict.exclusive
    version.save(update_fields=["stage", "production_exclusive", "updated_at"])
    audit_record(
        actor=actor,
        action="version.promote",
        obj=version,
        before=before,
        after={"stage": stage, "decision": decision.pk, "justification": justification},
    )


def _refusal_audit(
    *, actor: Actor, version: ModelVersion, verdict: _Verdict, decision: GateDecision
) -> None:
    audit_record(
        actor=actor,
        action="version.promotion_refused",
        obj=version,
        after={
            "stage": decision.to_stage,
            "decision": decision.pk,
            "failed": verdict.failed_checks,
        },
    )


def _promotion_publish(
    *, actor: Actor, version: ModelVersion, verdict: _Verdict, decision: GateDecision
) -> None:
    event_publish(
        kind="version.promoted" if verdict.passed else "version.promotion_refused",
        payload={
            "version": str(version),
            "stage": decision.to_stage,
            "decision": decision.pk,
            "passed": verdict.passed,
            "by": actor.username,
            "failed_checks": verdict.failed_checks,
        },
    )


@transaction.atomic
def stage_policy_update(
    *, actor: Actor, policy: StagePolicy, changes: dict[str, Any]
) -> StagePolicy:
    _require_compliance(actor, "change stage policies")
    unknown_checks = sorted(set(changes.get("required_checks", [])) - set(registered_checks()))
    if unknown_checks:
        raise InvalidInput.for_field(
            "required_checks",
            f"Unknown check(s): {', '.join(unknown_checks)}; "
            f"known: {', '.join(sorted(registered_checks()))}.",
        )
    before = apply_changes(
        policy,
        changes,
        {"allowed", "required_checks", "approvals_required", "hold_when_out_of_compliance"},
    )
    policy.revision += 1
    policy.updated_by = actor
    policy.save()
    audit_record(
        actor=actor, action="policy.update", obj=policy, before=before, after=snapshot(policy)
    )
    compliance_recheck_after_commit(
        ModelVersion.objects.filter(risk_tier=policy.risk_tier)
        .exclude(stage=Stage.ARCHIVED)
        .values_list("pk", flat=True)
    )
    return policy
