"""The gate: may a version enter a stage? It runs every gate check registered in the plug-in
registry (`registry.plugins`) and builds the verdict; the apps that provide checks register
them from `AppConfig.ready()`, so the core never imports them."""

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from django.utils import timezone

from registry.memo import read_memo
from registry.models import CheckWaiver, ModelVersion, StagePolicy
from registry.plugins import EvaluationResultsProvider, GateCheck, InvolvementProvider, plugins
from registry.selectors import is_team_member, standing_of, standing_problem
from registry.types import Reader

T = TypeVar("T")

USES = ("commercial", "internal", "research")
DISTRIBUTIONS = ("hosted", "shipped_weights")


@dataclass(frozen=True)
class GateContext:
    version: ModelVersion  # with model and team loaded
    stage: str
    use: str = "commercial"
    distribution: str = "hosted"
    actor: Reader | None = None
    approvals_required: int = 0
    policy_revision: int = 0
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def shared(self, key: str, read: Callable[[], T]) -> T:
        """`read()` once per gate evaluation: what several checks need (the version's parent
        edges, its model's evaluation suites) is fetched by the first check that asks."""
        if key not in self.memo:
            self.memo[key] = read()
        value: T = self.memo[key]  # stored by `read` under this key
        return value


@dataclass(frozen=True)
class CheckResult:
    check: str
    passed: bool
    reasons: list[str] = field(default_factory=list)
    # What the decision relied on: digests, policy version, evaluation run ids, hold ids...
    evidence: dict[str, Any] = field(default_factory=dict)
    required: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "check": self.check,
            "passed": self.passed,
            "required": self.required,
            "reasons": list(self.reasons),
            "evidence": self.evidence,
        }


def registered_checks() -> dict[str, Callable[[GateContext], CheckResult]]:
    return {check.name: check.run for check in plugins.contributions(GateCheck)}


def involved_user_ids(version: ModelVersion) -> set[int]:
    """Everyone who registered or produced `version`; they may not approve it."""
    users = {version.registered_by_id}
    for provider in plugins.contributions(InvolvementProvider):
        users |= provider.users(version)
    return users


def duty_conflict(user: Reader, version: ModelVersion) -> str | None:
    """Why `user` may not approve or waive anything on `version`, or None: nobody judges a
    version they made or their own team's version (separation of duties)."""
    if user.pk in involved_user_ids(version):
        return f"{user.username} registered or produced {version}"
    if is_team_member(user, version.model.team_id):
        return (
            f"{user.username} is a member of team '{version.model.team.slug}', which owns {version}"
        )
    return None


def evaluation_results(version: ModelVersion) -> list[dict[str, Any]]:
    return [
        result
        for provider in plugins.contributions(EvaluationResultsProvider)
        for result in provider.results(version)
    ]


logger = logging.getLogger(__name__)

STAGE_ORDER = ["development", "staging", "production", "archived"]
# Checks no waiver covers: the stage rules themselves, and the approvals separation of duties
# demands (waiving `approvals` would let one officer stand in for the required reviewers).
UNWAIVABLE = ("transition", "policy", "approvals")


def failing_checks(results: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The check rows of a gate's answer (`GateDecision.results`, the gate endpoint's `checks`)
    that refuse it: required, failed and not waived."""
    return [
        row for row in results if row["required"] and not row["passed"] and not row.get("waiver")
    ]


@dataclass(frozen=True)
class GateEvaluation:
    version_id: int
    ref: str
    from_stage: str
    to_stage: str
    use: str
    distribution: str
    passed: bool
    artefact_digest: str
    policy: dict[str, Any]
    results: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failures(self) -> list[dict[str, Any]]:
        return failing_checks(self.results)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.ref,
            "version_id": self.version_id,
            "from_stage": self.from_stage,
            "stage": self.to_stage,
            "use": self.use,
            "distribution": self.distribution,
            "passed": self.passed,
            "artefact_digest": self.artefact_digest,
            "policy": self.policy,
            "checks": self.results,
        }


def transition_problem(from_stage: str, to_stage: str) -> str | None:
    """Why the version cannot move from `from_stage` to `to_stage`, or None. Staying where it
    is is no move: the other checks then say whether it still belongs there."""
    if from_stage == to_stage:
        return None
    if from_stage == "archived":
        return "archived versions cannot be promoted again; register a new version"
    if STAGE_ORDER.index(to_stage) < STAGE_ORDER.index(from_stage):
        return f"versions move forward only ({' → '.join(STAGE_ORDER)}); archive it instead"
    return None


def active_waivers(version: ModelVersion, *, now: datetime | None = None) -> dict[str, CheckWaiver]:
    now = now or timezone.now()
    waivers = CheckWaiver.objects.filter(
        version=version,
        artefact_digest=version.artefact_digest,
        revoked_at__isnull=True,
        expires_at__gt=now,
    ).select_related("granted_by")
    waivers = waivers.only("check_name", "reason", "expires_at", "granted_by__username")
    waivers = waivers.annotate(**standing_of("granted_by_id", version.model.team_id))
    return {waiver.check_name: waiver for waiver in waivers}


def _run_check(
    name: str, check: Callable[[GateContext], CheckResult], context: GateContext
) -> CheckResult:
    try:
        return check(context)
    except Exception as error:  # a broken check must fail closed, never crash the gate
        logger.exception("gate check %s crashed", name)
        return CheckResult(name, False, [f"the {name} check could not run: {error}"])


def gate_evaluate(
    *,
    version: ModelVersion,
    stage: str,
    use: str = "commercial",
    distribution: str = "hosted",
    actor: Reader | None = None,
) -> GateEvaluation:
    """Run every registered gate check for `version` entering `stage`; writes nothing."""
    with read_memo():
        return _evaluated(version, stage, use, distribution, actor)


def _evaluated(
    version: ModelVersion, stage: str, use: str, distribution: str, actor: Reader | None
) -> GateEvaluation:
    policy = (
        StagePolicy.objects.filter(stage=stage, risk_tier=version.risk_tier)
        .values("allowed", "required_checks", "approvals_required", "revision")
        .first()
    )
    policy_data: dict[str, Any] = (
        {"stage": stage, "risk_tier": version.risk_tier, **policy}
        if policy
        else {
            "stage": stage,
            "risk_tier": version.risk_tier,
            "allowed": stage == "archived",
            "required_checks": [],
            "approvals_required": 0,
            "revision": 0,
        }
    )
    required = set(policy_data["required_checks"])
    context = GateContext(
        version=version,
        stage=stage,
        use=use,
        distribution=distribution,
        actor=actor,
        approvals_required=policy_data["approvals_required"],
        policy_revision=policy_data["revision"],
    )
    results: list[CheckResult] = []
    problem = transition_problem(version.stage, stage)
    stays = {"already_in_stage": True} if version.stage == stage else {}
    results.append(
        CheckResult("transition", problem is None, [problem] if problem else [], evidence=stays)
    )
    if not policy_data["allowed"]:
        reason = (
            f"risk tier '{version.risk_tier}' may never enter {stage} (stage policy)"
            if policy
            else f"no stage policy covers {stage} for risk tier '{version.risk_tier}'; "
            "compliance staff must configure one in the admin"
        )
        results.append(CheckResult("policy", False, [reason]))
    checks = registered_checks() if stage != "archived" else {}
    for name in sorted(required - set(checks)):
        results.append(
            CheckResult(
                name,
                False,
                [f"the stage policy requires the '{name}' check, but no installed app provides it"],
            )
        )
    for name, check in sorted(checks.items()):
        result = _run_check(name, check, context)
        results.append(replace(result, check=name, required=name in required))
    # Waivers only ever cover a failing required check: when none fails, none is looked up.
    failing = any(not result.passed and result.required for result in results)
    waivers = active_waivers(version) if failing else {}
    rows = []
    for result in results:
        row = result.to_dict()
        waiver = waivers.get(result.check) if not result.passed and result.required else None
        lapsed = waiver and standing_problem(waiver.granted_by.username, waiver)
        if waiver and lapsed:
            row["reasons"].append(f"waiver #{waiver.pk} no longer applies: {lapsed}")
        row["waiver"] = (
            {
                "id": waiver.pk,
                "reason": waiver.reason,
                "granted_by": waiver.granted_by.username,
                "expires_at": waiver.expires_at.isoformat(),
            }
            if waiver and not lapsed and result.check not in UNWAIVABLE
            else None
        )
        rows.append(row)
    passed = not failing_checks(rows)
    return GateEvaluation(
        version_id=version.pk,
        ref=str(version),
        from_stage=version.stage,
        to_stage=stage,
        use=use,
        distribution=distribution,
        passed=passed,
        artefact_digest=version.artefact_digest,
        policy=policy_data,
        results=rows,
    )
