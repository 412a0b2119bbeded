"""What evaluating the policy finds: violations, the licence alternatives chosen, the verdict."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from licensing.obligations import Obligation, Source, Step, path_text
from licensing.policy.rules import WaiverSpec

SEVERITY_ORDER = {"error": 0, "warning": 1, "hint": 2}


@dataclass(frozen=True)
class Violation:
    rule: str
    position: int
    severity: str
    condition: str
    licence: str
    source: Source
    steps: tuple[Step, ...]
    clause: str
    term_type: str
    message: str
    how_to_fix: str
    waiver: WaiverSpec | None = None

    @property
    def path(self) -> str:
        return path_text(self.steps)

    @property
    def blocking(self) -> bool:
        return self.severity == "error" and self.waiver is None

    def line(self) -> str:
        """One line for gate reasons: rule, licence, path, clause and fix."""
        where = f" ({self.clause})" if self.clause and self.clause not in self.message else ""
        return (
            f"[{self.rule}] {self.licence} via {self.path}{where}: {self.message} "
            f"Fix: {self.how_to_fix}"
        )

    def to_dict(self, *, with_steps: bool = True) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "severity": self.severity,
            "condition": self.condition,
            "licence": self.licence,
            "source": self.source.ref,
            "source_kind": self.source.kind,
            "path": self.path,
            **({"steps": [step.to_dict() for step in self.steps]} if with_steps else {}),
            "clause": self.clause,
            "term": self.term_type,
            "message": self.message,
            "how_to_fix": self.how_to_fix,
            "waived": self.waiver is not None,
            "waiver": self.waiver.to_dict() if self.waiver else None,
        }


@dataclass(frozen=True)
class Choice:
    source: Source
    chosen: tuple[str, ...]
    satisfied: bool

    def to_dict(self) -> dict[str, Any]:
        chosen = " AND ".join(self.chosen)
        why = (
            "the least restrictive alternative that satisfies the policy"
            if self.satisfied
            else "no alternative satisfies the policy; this one has the fewest violations"
        )
        return {
            "source": self.source.ref,
            "source_kind": self.source.kind,
            "expression": self.source.expression,
            "alternatives": [" AND ".join(option) for option in self.source.alternatives],
            "chosen": chosen,
            "reason": f"{chosen} chosen from '{self.source.expression}': {why}",
        }


@dataclass
class LicenceCheck:
    version: Any
    stage: str
    use: str
    distribution: str
    policy: dict[str, Any]
    output: tuple[str, ...]
    violations: list[Violation] = field(default_factory=list)
    choices: list[Choice] = field(default_factory=list)
    obligations: list[Obligation] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    # Waivers that would cover a violation but stopped counting, each with why.
    lapsed_waivers: list[tuple[WaiverSpec, str]] = field(default_factory=list)

    @property
    def blocking(self) -> list[Violation]:
        return [violation for violation in self.violations if violation.blocking]

    @property
    def passed(self) -> bool:
        return not self.blocking and not self.problems

    def counts(self) -> dict[str, int]:
        counts = {"error": 0, "warning": 0, "hint": 0, "waived": 0}
        for violation in self.violations:
            counts["waived" if violation.waiver else violation.severity] += 1
        return counts

    def reasons(self) -> list[str]:
        reasons = [*self.problems]
        for violation in self.blocking:
            reasons.append(violation.line())
            reasons += [
                f"licence waiver #{waiver.id} no longer counts: {problem}; "
                "ask compliance staff to waive it again"
                for waiver, problem in self.lapsed_waivers
                if waiver.matches(violation.rule, violation.licence)
            ]
        return reasons

    def to_dict(self, *, with_obligations: bool = True) -> dict[str, Any]:
        data = {
            **self._verdict(),
            "violations": [violation.to_dict() for violation in self.violations],
        }
        if with_obligations:
            data["obligations"] = [obligation.to_dict() for obligation in self.obligations]
        return data

    def summary(self) -> dict[str, Any]:
        """What a gate decision keeps as evidence: the verdict, its inputs and every error,
        warning and waived violation with its path; hints are only counted. A deep lineage
        owes a notice hint per permissive ancestor, which would make each decision long."""
        return {
            **self._verdict(),
            "violations": [
                violation.to_dict(with_steps=False)
                for violation in self.violations
                if violation.severity != "hint" or violation.waiver
            ],
        }

    def _verdict(self) -> dict[str, Any]:
        return {
            "version": str(self.version),
            "version_id": self.version.pk,
            "artefact_digest": self.version.artefact_digest,
            "stage": self.stage,
            "use": self.use,
            "distribution": self.distribution,
            "passed": self.passed,
            "policy": self.policy,
            "licence": {"chosen": " AND ".join(self.output) or None},
            "counts": self.counts(),
            "problems": list(self.problems),
            "choices": [choice.to_dict() for choice in self.choices],
        }
