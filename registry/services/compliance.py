"""Continuous compliance: every version's standing, recomputed by the gate engine whenever an
input of its gate changes (`compliance_recheck_after_commit`) and on a schedule
(`compliance_recheck`). A staging or production version that no longer passes the gate of its
stage becomes out of compliance: audited, published as a webhook event and, where its stage
policy says so, held automatically. Nothing is left silently non-compliant."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from registry.audit import audit_record
from registry.gates import STAGE_ORDER, GateEvaluation, gate_evaluate
from registry.models import (
    ComplianceState,
    ComplianceStatus,
    GateDecision,
    ModelVersion,
    Stage,
    StagePolicy,
)
from registry.outbox import outbox_add
from registry.plugins import ComplianceHold, plugins
from registry.services.events import EVENTS_QUEUE, event_publish

GATED_STAGES = (Stage.STAGING, Stage.PRODUCTION)
_HOLD_CHECK = "lineage_health"


@dataclass(frozen=True)
class _Assessment:
    state: str
    current: GateEvaluation | None
    target: GateEvaluation | None
    failing: list[dict[str, Any]]
    action: str


def _target_stage(version: ModelVersion, wanted: str | None) -> str:
    """The stage the version was last asked for when that lies ahead, else the next one."""
    position = STAGE_ORDER.index(version.stage)
    if wanted and wanted in STAGE_ORDER and STAGE_ORDER.index(wanted) > position:
        return wanted
    following = STAGE_ORDER[position + 1] if position + 1 < len(STAGE_ORDER) else ""
    return following if following in GATED_STAGES else ""


def _failures(evaluation: GateEvaluation | None) -> list[dict[str, Any]]:
    if evaluation is None:
        return []
    return [
        {"stage": evaluation.to_stage, "check": row["check"], "reasons": row["reasons"]}
        for row in evaluation.failures
    ]


def _assess(version: ModelVersion, wanted: str | None, use: str, distribution: str) -> _Assessment:
    def judge(stage: str) -> GateEvaluation:
        return gate_evaluate(version=version, stage=stage, use=use, distribution=distribution)

    current = judge(version.stage) if version.stage in GATED_STAGES else None
    target_stage = _target_stage(version, wanted)
    target = judge(target_stage) if target_stage else None
    failing = _failures(current) + _failures(target)
    failed_checks = {row["check"] for row in failing}
    if current is not None and not current.passed:
        state = ComplianceState.OUT_OF_COMPLIANCE
        action = (
            f"It no longer passes the {version.stage} gate: restore the evidence the reasons "
            "name, renew approvals or waivers, or archive the version."
        )
    elif _HOLD_CHECK in failed_checks and any(
        "held" in reason for row in failing for reason in row["reasons"]
    ):
        state = ComplianceState.HELD
        action = "Resolve what the hold names; compliance staff then lift it."
    elif target is not None and not target.passed:
        only_approvals = failed_checks == {"approvals"}
        state = ComplianceState.AWAITING_APPROVAL if only_approvals else ComplianceState.BLOCKED
        action = (
            f"Ask a compliance officer outside the owning team to review it for {target_stage}."
            if only_approvals
            else f"Fix what the failing checks name before asking for {target_stage}."
        )
    elif target is not None:
        state, action = ComplianceState.READY, f"It may be promoted to {target_stage}."
    else:
        state, action = ComplianceState.COMPLIANT, ""
    return _Assessment(state, current, target, failing, action)


def _flag(version: ModelVersion, assessment: _Assessment, *, since: Any) -> None:
    reasons = [
        f"{row['check']}: {reason}" for row in assessment.failing for reason in row["reasons"]
    ]
    audit_record(
        actor=None,
        action="version.out_of_compliance",
        obj=version,
        after={"stage": version.stage, "failing": assessment.failing, "since": since},
    )
    event_publish(
        kind="version.out_of_compliance",
        payload={"version": str(version), "stage": version.stage, "reasons": reasons},
    )
    wants_hold = StagePolicy.objects.filter(
        stage=version.stage, risk_tier=version.risk_tier, hold_when_out_of_compliance=True
    ).exists()
    for hold in plugins.contributions(ComplianceHold) if wants_hold else []:
        hold.place(version, "out of compliance in " + version.stage + ": " + "; ".join(reasons))


def _unflag(version: ModelVersion) -> None:
    audit_record(
        actor=None, action="version.back_in_compliance", obj=version, after={"stage": version.stage}
    )
    event_publish(
        kind="version.back_in_compliance", payload={"version": str(version), "stage": version.stage}
    )


def compliance_recheck(*, version_ids: Iterable[int] | None = None) -> list[ComplianceStatus]:
    """Recompute the standing of the given versions (default: every version not archived) with
    the gate engine, a bounded number of queries per version, and react to changes: a staged
    version that stops passing is flagged (audit, webhook, hold where the policy says so), one
    that passes again is cleared."""
    versions = ModelVersion.objects.exclude(stage=Stage.ARCHIVED).select_related("model__team")
    if version_ids is not None:
        versions = versions.filter(pk__in=list(version_ids))
    statuses = []
    for version in versions.order_by("pk").iterator(chunk_size=200):
        statuses.append(_recheck_one(version))
    return statuses


@transaction.atomic
def _recheck_one(version: ModelVersion) -> ComplianceStatus:
    previous = ComplianceStatus.objects.select_for_update().filter(version=version).first()
    decisions = GateDecision.objects.filter(version=version).order_by("-decided_at", "-id")
    latest = decisions.values("to_stage", "use", "distribution").first()
    promoted = decisions.filter(passed=True, to_stage=version.stage).values("use", "distribution")
    context = promoted.first() or latest or {"use": "commercial", "distribution": "hosted"}
    assessment = _assess(
        version,
        latest["to_stage"] if latest else None,
        context["use"],
        context["distribution"],
    )
    now = timezone.now()
    out = assessment.state == ComplianceState.OUT_OF_COMPLIANCE
    flagged_since = previous.out_of_compliance_since if previous is not None else None
    was_out = flagged_since is not None
    since = (flagged_since or now) if out else None
    status, _ = ComplianceStatus.objects.update_or_create(
        version=version,
        defaults={
            "stage": version.stage,
            "state": assessment.state,
            "current_passed": assessment.current.passed if assessment.current else None,
            "target_stage": assessment.target.to_stage if assessment.target else "",
            "target_passed": assessment.target.passed if assessment.target else None,
            "failing": assessment.failing,
            "action": assessment.action,
            "gated": latest is not None,
            "out_of_compliance_since": since,
            "computed_at": now,
        },
    )
    if out and not was_out:
        _flag(version, assessment, since=since)
    elif was_out and not out:
        _unflag(version)
    return status


def compliance_recheck_after_commit(version_ids: Iterable[int] | None = None) -> None:
    """Recheck after the current transaction commits (an input of these versions' gates
    changed; None: every version), in a task so the writer does not wait for it. Through the
    outbox, so a broker outage delays the recheck and never loses it."""
    ids = None if version_ids is None else sorted(set(version_ids))
    with transaction.atomic():
        outbox_add(task="registry.tasks.recheck_compliance", args=[ids], queue=EVENTS_QUEUE)
