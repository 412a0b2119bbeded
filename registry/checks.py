"""The catalogue's own gate checks: metadata completeness and approvals."""

from registry.evidence import evidence_changes, evidence_snapshot
from registry.gates import CheckResult, GateContext, involved_user_ids
from registry.selectors import standing_problem, valid_approvals


def metadata_complete(context: GateContext) -> CheckResult:
    version = context.version
    missing = [
        label
        for label, value in [
            ("intended use", version.intended_use),
            ("known limitations", version.known_limitations),
            ("declared licence", version.licence_declared),
        ]
        if not value.strip()
    ]
    if context.stage == "production" and not version.licence_concluded.strip():
        missing.append("licence concluded by compliance")
    reasons = [
        f"missing {label}: fill it in on the version (API PATCH or admin)" for label in missing
    ]
    return CheckResult("metadata", not missing, reasons, evidence={"risk_tier": version.risk_tier})


def approvals_given(context: GateContext) -> CheckResult:
    version = context.version
    approvals = valid_approvals(version, context.stage)
    # Who made the version matters only when someone approved it.
    approved = any(a.decision == "approve" for a in approvals)
    involved = involved_user_ids(version) if approved else set()
    rejections = [a for a in approvals if a.decision == "reject"]
    lapsed = {
        a.pk: problem
        for a in approvals
        if a.decision == "approve" and (problem := standing_problem(a.approver.username, a))
    }
    for approval in approvals:
        if approval.decision != "approve" or approval.pk in lapsed:
            continue
        if not approval.evidence:
            # Given before approvals kept a snapshot: what it approved is unknown, so it cannot
            # vouch for the evidence now (a tier lowered or a licence relabelled since).
            lapsed[approval.pk] = (
                f"it was given on {approval.created_at:%Y-%m-%d}, before approvals recorded the "
                "evidence they saw, so what it approved is unknown"
            )
        else:
            current = context.shared(
                "registry.evidence",
                lambda: evidence_snapshot(
                    version, context.stage, policy_revision=context.policy_revision
                ),
            )
            changed = evidence_changes(approval.evidence, current)
            if changed:
                lapsed[approval.pk] = (
                    f"the evidence it approved changed since {approval.created_at:%Y-%m-%d}: "
                    + "; ".join(changed)
                )
    counted = {
        a.approver_id: a
        for a in approvals
        if a.decision == "approve" and a.approver_id not in involved and a.pk not in lapsed
    }
    reasons = [
        f"rejected by {a.approver.username} on {a.created_at:%Y-%m-%d}: {a.comment or 'no comment'}"
        for a in rejections
    ]
    reasons += [
        f"approval #{pk} no longer counts: {problem}; ask compliance staff to review it again"
        for pk, problem in lapsed.items()
    ]
    needed = context.approvals_required
    if len(counted) < needed:
        reasons.append(
            f"{len(counted)} of {needed} required compliance approval(s) for {context.stage} "
            f"of digest {version.artefact_digest[:12]}…; ask compliance staff to review"
        )
    return CheckResult(
        "approvals",
        not rejections and len(counted) >= needed,
        reasons,
        evidence={
            "approvals": [
                {
                    "id": a.pk,
                    "approver": a.approver.username,
                    "expires_at": a.expires_at.isoformat(),
                }
                for a in counted.values()
            ],
            "required": needed,
        },
    )
