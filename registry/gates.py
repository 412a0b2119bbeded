"""The gate-check plug-in point.

`registry` runs every registered check when asked whether a version may enter a stage, without
importing the apps that provide them: each app registers its checks in `AppConfig.ready()`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

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


class GateCheck(Protocol):
    def __call__(self, context: GateContext) -> CheckResult: ...


_CHECKS: dict[str, GateCheck] = {}


def register_check(name: str) -> Callable[[GateCheck], GateCheck]:
    """Decorator: `@register_check("licence")` on a function taking a GateContext."""

    def decorate(check: GateCheck) -> GateCheck:
        if name in _CHECKS and _CHECKS[name] is not check:
            raise ValueError(f"a gate check named {name!r} is already registered")
        _CHECKS[name] = check
        return check

    return decorate


def registered_checks() -> dict[str, GateCheck]:
    return dict(_CHECKS)


# Separation of duties: apps name the users who made a version (e.g. lineage: the training
# run's owner), so that none of them can approve it.
_INVOLVEMENT: list[Callable[[Any], set[int]]] = []


def register_involvement(provider: Callable[[Any], set[int]]) -> Callable[[Any], set[int]]:
    if provider not in _INVOLVEMENT:
        _INVOLVEMENT.append(provider)
    return provider


def involved_user_ids(version) -> set[int]:
    """Everyone who registered or produced `version`; they may not approve it."""
    users = {version.registered_by_id}
    for provider in _INVOLVEMENT:
        users |= provider(version)
    return users


# Evaluation results shown in exports (SPDX 3.0 AI metrics, the model card's model-index): the
# evaluators app registers a provider returning, for a version, dicts with keys `task`,
# `dataset` (name), `metric`, `value` and optionally `dataset_type`, `split`, `source`.
_RESULTS: list[Callable[[Any], list[dict[str, Any]]]] = []


def register_results_provider(
    provider: Callable[[Any], list[dict[str, Any]]],
) -> Callable[[Any], list[dict[str, Any]]]:
    if provider not in _RESULTS:
        _RESULTS.append(provider)
    return provider


def evaluation_results(version) -> list[dict[str, Any]]:
    return [result for provider in _RESULTS for result in provider(version)]
