"""Evaluating the licence policy against a version's obligations. Pure: no queries.

A rule fires when it is enabled, the context matches (target stage, intended use,
distribution; an empty list matches any) and its condition holds for a source (the version,
an ancestor, a training dataset), one of its licences or one of the terms that reach the
version. Each firing is a violation naming the rule, the licence, the path, the clause and the
fix. A violation is waived by an unexpired, unrevoked waiver of its rule (for its licence, or
for any licence). Unwaived errors fail the check.

Where a licence expression offers alternatives (OR), each source's alternative is picked to
minimise (unwaived errors, warnings, hints, obligations), in that order: the least restrictive
branch that satisfies the policy. The version's own alternatives are tried one by one, since
share-alike and other conflicts compare the inputs with the output licence.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from licensing.obligations import (
    LicenceInfo,
    Obligation,
    Source,
    Step,
    VersionObligations,
    path_text,
)

SEVERITY_ORDER = {"error": 0, "warning": 1, "hint": 2}

PLACEHOLDERS: dict[str, str] = {
    "licence": "the licence's SPDX id",
    "licence_name": "the licence's full name",
    "category": "the licence's category",
    "term": "the term type",
    "value": "the term's value (name prefix, user threshold, policy URL)",
    "clause": "the clause the term cites",
    "source": "the version, ancestor or dataset the licence comes from",
    "path": "how the licence reaches the version",
    "model": "the model's name",
    "version": "the version (MODEL@VERSION)",
    "output_licence": "the version's own licence (the chosen alternative)",
    "stage": "the target stage",
    "use": "the intended use",
    "distribution": "how the version is distributed",
}


def placeholder_problems(text: str) -> list[str]:
    """Unknown or malformed placeholders in a rule's message or fix."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
    except ValueError as error:
        return [f"{error} (write a literal brace as '{{{{' or '}}}}')"]
    unknown = sorted({name for name in names if name not in PLACEHOLDERS})
    return [
        f"unknown placeholder {{{name}}}; use one of: "
        + ", ".join(f"{{{known}}}" for known in PLACEHOLDERS)
        for name in unknown
    ]


class _Placeholders(dict):
    """A rule's placeholder values; `{path}` is worked out only when a text uses it (a long
    lineage makes it long), and an unknown placeholder reads as ''."""

    def __init__(self, steps: tuple[Step, ...], **values: str) -> None:
        super().__init__(values)
        self.steps = steps

    def __missing__(self, key: str) -> str:
        return path_text(self.steps) if key == "path" else ""


@dataclass(frozen=True)
class RuleSpec:
    name: str
    condition: str
    severity: str
    message: str
    how_to_fix: str
    category: str = ""
    licence: str = ""
    term_type: str = ""
    scope: str = "any"
    stages: tuple[str, ...] = ()
    uses: tuple[str, ...] = ()
    distributions: tuple[str, ...] = ()
    position: int = 0
    enabled: bool = True

    def applies_in(self, *, stage: str, use: str, distribution: str) -> bool:
        return (
            self.enabled
            and (not self.stages or stage in self.stages)
            and (not self.uses or use in self.uses)
            and (not self.distributions or distribution in self.distributions)
        )

    def in_scope(self, source: Source) -> bool:
        if self.scope == "own":
            return source.kind == "self"
        if self.scope == "inherited":
            return source.kind != "self"
        return True

    def covers(self, licence: LicenceInfo) -> bool:
        """Whether the rule speaks about the licence, whatever the context: what the
        catch-all looks at."""
        match self.condition:
            case "category":
                return licence.category == self.category
            case "licence":
                return licence.id == self.licence
            case "term_type" | "conflict":
                return self.term_type in licence.term_types
            case "unknown_licence":
                return licence.category == "unknown"
            case "unreviewed_licence":
                return licence.review_required
        return False


@dataclass(frozen=True)
class WaiverSpec:
    id: int
    rule_name: str
    licence_id: str
    reason: str
    approver: str
    granted_by: str
    expires_at: datetime

    def matches(self, rule: str, licence: str) -> bool:
        return self.rule_name == rule and self.licence_id in ("", licence)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "rule": self.rule_name,
            "licence": self.licence_id or None,
            "reason": self.reason,
            "approver": self.approver,
            "granted_by": self.granted_by,
            "expires_at": self.expires_at.isoformat(),
        }


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
        return [*self.problems, *(violation.line() for violation in self.blocking)]

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


def _merge_duplicates(violations: list[Violation]) -> list[Violation]:
    """One violation per duty: the same term of the same licence reached from several sources
    (the version's own licence and an ancestor's, say) is reported once, through an input when
    there is one, since that says where it came from. Other violations stay one per source."""
    kept: dict[tuple, Violation] = {}
    for violation in violations:
        key: tuple = (violation.rule, violation.licence)
        key += (
            (violation.term_type, violation.clause)
            if violation.term_type
            else (violation.source.kind, violation.source.object_id)
        )
        current = kept.get(key)
        if current is None or (current.source.kind == "self" and violation.source.kind != "self"):
            kept[key] = violation
    return list(kept.values())


def _score(violations: Iterable[Violation], obligations: int) -> tuple[int, int, int, int]:
    counts = [0, 0, 0]
    for violation in violations:
        if violation.waiver is None:
            counts[SEVERITY_ORDER[violation.severity]] += 1
    return (counts[0], counts[1], counts[2], obligations)


class _Evaluator:
    def __init__(
        self,
        obligations: VersionObligations,
        rules: Sequence[RuleSpec],
        waivers: Sequence[WaiverSpec],
        *,
        stage: str,
        use: str,
        distribution: str,
    ) -> None:
        self.obligations = obligations
        self.version = obligations.version
        self.context = {"stage": stage, "use": use, "distribution": distribution}
        self.active = [
            rule
            for rule in rules
            if rule.applies_in(stage=stage, use=use, distribution=distribution)
        ]
        self.coverers = [rule for rule in rules if rule.enabled and rule.condition != "catch_all"]
        self._covered: dict[str, bool] = {}
        self._output_types: dict[tuple[str, ...], frozenset[str]] = {}
        self._matches: dict[tuple, list[tuple[RuleSpec, LicenceInfo | None, int | None]]] = {}
        self.waivers = list(waivers)
        self.names = {"model": self.version.model.name, "version": str(self.version)}

    def _violation(
        self,
        rule: RuleSpec,
        source: Source,
        *,
        licence: LicenceInfo | None,
        output: Sequence[str],
        obligation: Obligation | None = None,
    ) -> Violation:
        licence_id = licence.id if licence else "NONE"
        term = obligation.term if obligation else None
        steps = (
            obligation.steps
            if obligation
            else (source.steps + ((Step("licence", licence.id),) if licence else ()))
        )
        values = _Placeholders(
            steps,
            licence=licence_id,
            licence_name=licence.name if licence else "no licence",
            category=licence.category if licence else "",
            term=term.type if term else "",
            value="" if term is None or term.value is None else str(term.value),
            clause=term.clause if term else "",
            source=source.ref,
            output_licence=" AND ".join(output) or "no licence",
            **self.names,
            **self.context,
        )
        waiver = next(
            (waiver for waiver in self.waivers if waiver.matches(rule.name, licence_id)), None
        )
        return Violation(
            rule=rule.name,
            position=rule.position,
            severity=rule.severity,
            condition=rule.condition,
            licence=licence_id,
            source=source,
            steps=steps,
            clause=term.clause if term else "",
            term_type=term.type if term else "",
            message=rule.message.format_map(values),
            how_to_fix=rule.how_to_fix.format_map(values),
            waiver=waiver,
        )

    def _naming_met(self, obligation: Obligation) -> bool:
        if obligation.source.kind == "self" and self.version.model.kind == "upstream":
            return True  # the licensed model itself, not something built from it
        name = self.version.model.name.rsplit("/", 1)[-1]
        return name.casefold().startswith(str(obligation.term.value).casefold())

    def findings(
        self, source: Source, alternative: Sequence[str], output: Sequence[str]
    ) -> list[Violation]:
        carried = self.obligations.of(source, alternative)
        # Which rules fire depends on the kind of source, its flags and the terms it passes on,
        # not on which ancestor it is: a deep lineage of same-licensed ancestors is judged once.
        key = (
            source.kind,
            source.missing,
            source.upstream,
            source.evidence,
            source.concluded,
            tuple(alternative),
            tuple(output),
            tuple(id(obligation.term) for obligation in carried),  # terms are shared objects
        )
        if key not in self._matches:
            self._matches[key] = self._match(source, alternative, output, carried)
        return [
            self._violation(
                rule,
                source,
                licence=licence,
                output=output,
                obligation=None if index is None else carried[index],
            )
            for rule, licence, index in self._matches[key]
        ]

    def _match(
        self,
        source: Source,
        alternative: Sequence[str],
        output: Sequence[str],
        carried: list[Obligation],
    ) -> list[tuple[RuleSpec, LicenceInfo | None, int | None]]:
        """(rule, licence, index of the carried obligation) for each violation."""
        found: list[tuple[RuleSpec, LicenceInfo | None, int | None]] = []
        licences = self.obligations.licences_of(alternative)
        output_types = self._term_types_of(output)
        for rule in self.active:
            if not rule.in_scope(source):
                continue
            if rule.condition == "missing_licence":
                if source.missing:
                    found.append((rule, None, None))
                continue
            if rule.condition == "missing_evidence":
                if not source.missing and source.upstream and not source.evidence:
                    found += [(rule, licence, None) for licence in licences]
                continue
            found += [
                (rule, licence, None)
                for licence in licences
                if self._licence_matches(rule, source, licence)
            ]
            found += [
                (rule, obligation.licence, index)
                for index, obligation in enumerate(carried)
                if self._term_matches(rule, obligation, output_types)
            ]
        return found

    def _licence_matches(self, rule: RuleSpec, source: Source, licence: LicenceInfo) -> bool:
        match rule.condition:
            case "category":
                return licence.category == rule.category
            case "licence":
                return licence.id == rule.licence
            case "unknown_licence":
                return not source.concluded and licence.category == "unknown"
            case "unreviewed_licence":
                return not source.concluded and licence.review_required
            case "catch_all":
                return not self._is_covered(licence)
        return False

    def _term_types_of(self, output: Sequence[str]) -> frozenset[str]:
        """The term types of the version's own (chosen) licences, asked once per choice."""
        key = tuple(output)
        if key not in self._output_types:
            licences = self.obligations.licences_of(output)
            self._output_types[key] = frozenset().union(*(lic.term_types for lic in licences))
        return self._output_types[key]

    def _is_covered(self, licence: LicenceInfo) -> bool:
        """Whether another rule speaks about the licence (asked once per licence)."""
        if licence.id not in self._covered:
            self._covered[licence.id] = any(other.covers(licence) for other in self.coverers)
        return self._covered[licence.id]

    def _term_matches(
        self, rule: RuleSpec, obligation: Obligation, output_types: frozenset[str]
    ) -> bool:
        if obligation.term.type != rule.term_type:
            return False
        if rule.condition == "term_type":
            return not (rule.term_type == "naming_prefix" and self._naming_met(obligation))
        if rule.condition == "conflict":
            return obligation.source.kind != "self" and rule.term_type not in output_types
        return False

    def best(
        self, source: Source, options: Sequence[tuple[str, ...]], output: Sequence[str]
    ) -> tuple[tuple[str, ...], list[Violation], tuple[int, int, int, int]]:
        scored = []
        for index, alternative in enumerate(options):
            violations = self.findings(source, alternative, output)
            score = _score(violations, len(self.obligations.of(source, alternative)))
            scored.append((score, index, alternative, violations))
        score, _, alternative, violations = min(scored, key=lambda item: (item[0], item[1]))
        return alternative, violations, score


def evaluate(
    obligations: VersionObligations,
    rules: Sequence[RuleSpec],
    waivers: Sequence[WaiverSpec],
    *,
    stage: str,
    use: str,
    distribution: str,
    policy: dict[str, Any],
) -> LicenceCheck:
    evaluator = _Evaluator(
        obligations, rules, waivers, stage=stage, use=use, distribution=distribution
    )
    own, inputs = obligations.own, obligations.sources[1:]
    candidates = []
    for index, output in enumerate(own.alternatives or ((),)):
        violations = evaluator.findings(own, output, output)
        picks = [(own, output, _score(violations, 0)[0] == 0)]
        count = len(obligations.of(own, output))
        for source in inputs:
            chosen, found, score = evaluator.best(source, source.alternatives or ((),), output)
            violations += found
            count += score[3]
            picks.append((source, chosen, score[0] == 0))
        violations = _merge_duplicates(violations)
        candidates.append((_score(violations, count), index, output, violations, picks))
    _, _, output, violations, picks = min(candidates, key=lambda item: (item[0], item[1]))
    check = LicenceCheck(
        version=obligations.version,
        stage=stage,
        use=use,
        distribution=distribution,
        policy=policy,
        output=tuple(output),
        # Sorting is stable: one rule's violations stay in source order (the version, then
        # its ancestors nearest first, then its training data).
        violations=sorted(violations, key=lambda v: (SEVERITY_ORDER[v.severity], v.position)),
        choices=[
            Choice(source, chosen, satisfied)
            for source, chosen, satisfied in picks
            if len(source.alternatives) > 1
        ],
        obligations=[
            obligation
            for source, chosen, _ in picks
            for obligation in obligations.of(source, chosen)
        ],
        problems=[
            f"{source.ref}: {source.problem}" for source in obligations.sources if source.problem
        ],
    )
    return check
