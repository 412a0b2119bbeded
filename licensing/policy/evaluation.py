"""Evaluating the rules against a version's obligations, alternative by alternative."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from licensing.catalogue import LicenceError, get_licence
from licensing.obligations import (
    LicenceInfo,
    Obligation,
    Source,
    Step,
    VersionObligations,
    attestation_of,
    path_text,
)
from licensing.policy.results import SEVERITY_ORDER, Choice, LicenceCheck, Violation
from licensing.policy.rules import UPSTREAM_TRAINING_DATA, RuleSpec, WaiverSpec


def licensor_namespaces(licence_id: str) -> tuple[str, ...]:
    try:
        return get_licence(licence_id).licensor_namespaces
    except LicenceError:
        return ()


class _Placeholders(dict):
    """A rule's placeholder values; `{path}` is worked out only when a text uses it (a long
    lineage makes it long), and an unknown placeholder reads as ''."""

    def __init__(self, steps: tuple[Step, ...], **values: str) -> None:
        super().__init__(values)
        self.steps = steps

    def __missing__(self, key: str) -> str:
        return path_text(self.steps) if key == "path" else ""


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
        attestations: frozenset[str] = frozenset(),
    ) -> None:
        self.obligations = obligations
        self.attestations = attestations
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
            attestation=attestation_of(licence_id, term) if term else "",
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
        if self.version.model.kind == "upstream":
            # The licensor's own releases (the catalogue names its Hub namespaces) owe it no
            # naming; any other upstream model is a derivative like a registered one.
            repo = self.version.hub_repo_id or self.version.model.name
            namespace = repo.split("/", 1)[0].casefold() if "/" in repo else ""
            if namespace and namespace in licensor_namespaces(obligation.licence.id):
                return True
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
            source.review,
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
            if rule.condition == UPSTREAM_TRAINING_DATA:
                found += self._upstream_data_matches(rule, source, licences, carried)
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

    @staticmethod
    def _upstream_data_matches(
        rule: RuleSpec,
        source: Source,
        licences: list[LicenceInfo],
        carried: list[Obligation],
    ) -> list[tuple[RuleSpec, LicenceInfo | None, int | None]]:
        """An upstream card's training dataset: each of its terms that reaches the version (of
        `rule.term_type` only, when the rule names one), and, for a rule naming no term type, a
        licence missing, or unknown and not concluded."""
        if source.missing:
            return [] if rule.term_type else [(rule, None, None)]
        found: list[tuple[RuleSpec, LicenceInfo | None, int | None]] = []
        if not rule.term_type and not source.concluded:
            found += [(rule, lic, None) for lic in licences if lic.category == "unknown"]
        found += [
            (rule, obligation.licence, index)
            for index, obligation in enumerate(carried)
            if rule.term_type in ("", obligation.term.type)
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
                return not source.concluded and (licence.review_required or source.review)
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
            attestation = attestation_of(obligation.licence.id, obligation.term)
            if attestation and attestation in self.attestations:
                return False
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
    attestations: frozenset[str] = frozenset(),
) -> LicenceCheck:
    evaluator = _Evaluator(
        obligations,
        rules,
        waivers,
        stage=stage,
        use=use,
        distribution=distribution,
        attestations=attestations,
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
