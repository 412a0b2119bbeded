"""The gate-check plug-in point.

`registry` runs every registered check when asked whether a version may enter a stage, without
importing the apps that provide them: each app registers its checks in `AppConfig.ready()`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from registry.plugins import EvaluationResultsProvider, GateCheck, InvolvementProvider, plugins

T = TypeVar("T")

USES = ("commercial", "internal", "research")
DISTRIBUTIONS = ("hosted", "shipped_weights")


@dataclass(frozen=True)
class GateContext:
    version: Any  # registry.models.ModelVersion, with model and team loaded
    stage: str
    use: str = "commercial"
    distribution: str = "hosted"
    actor: Any = None
    approvals_required: int = 0
    memo: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def shared(self, key: str, read: Callable[[], T]) -> T:
        """`read()` once per gate evaluation: what several checks need (the version's parent
        edges, its model's evaluation suites) is fetched by the first check that asks."""
        if key not in self.memo:
            self.memo[key] = read()
        return self.memo[key]


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


def involved_user_ids(version) -> set[int]:
    """Everyone who registered or produced `version`; they may not approve it."""
    users = {version.registered_by_id}
    for provider in plugins.contributions(InvolvementProvider):
        users |= provider.users(version)
    return users


def evaluation_results(version) -> list[dict[str, Any]]:
    return [
        result
        for provider in plugins.contributions(EvaluationResultsProvider)
        for result in provider.results(version)
    ]
