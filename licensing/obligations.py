"""Effective obligations of a version, from data the selectors fetched in a fixed few queries.

A version owes the terms of its own licence, plus each term of an input's licence that reaches
it: an ancestor's term when every lineage edge on some path from the version up to that
ancestor has a relation the term `carries_through`; a training dataset's term when, in
addition, the term carries through `trained_on`. Each obligation keeps the path it came
through (version → edge → ancestor/dataset → licence → clause), the shortest such path.

The licence of a version or dataset version is its concluded licence when compliance set one,
else its declared licence. An OR expression yields several alternatives; obligations are
listed per alternative and the policy picks one (see `licensing.policy`).
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from licensing.catalogue import TRAINED_ON, UNKNOWN_LICENCE_ID, LicenceError
from licensing.validation import NO_ASSERTION, parsed
from lineage.models import Relation
from lineage.selectors import Ancestry, AncestryEdge, AncestryNode


@dataclass(frozen=True)
class Step:
    """One element of a path: a version, an edge, a dataset, a licence or a clause."""

    kind: str
    label: str
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "label": self.label}
        if self.id is not None:
            data["id"] = self.id
        return data


def attestation_of(licence_id: str, term: TermInfo) -> str:
    """The attestation a production approval gives for a term the catalogue marks as hinging
    on a fact only the releasing team knows, or '' when none is needed."""
    return f"{licence_id} {term.type}" if term.attestation else ""


def path_text(steps: Sequence[Step]) -> str:
    """'a@v2 —finetune→ a@v1 —trained on (train)→ d@v1 → CC-BY-NC-4.0 → §2(a)(1)'."""
    text = ""
    pending_edge = ""
    for step in steps:
        if step.kind == "edge":
            pending_edge = step.label
            continue
        if text:
            text += f" —{pending_edge}→ " if pending_edge else " → "
        text += step.label
        pending_edge = ""
    return text


@dataclass(frozen=True)
class TermInfo:
    type: str
    clause: str
    text: str
    value: Any
    carries_through: tuple[str, ...]
    note: str = ""
    attestation: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "clause": self.clause,
            "text": self.text,
            "value": self.value,
            "carries_through": list(self.carries_through),
            "note": self.note,
            "attestation": self.attestation,
        }


@dataclass(frozen=True)
class LicenceInfo:
    id: str
    name: str
    category: str
    review_required: bool
    url: str
    curated: bool
    terms: tuple[TermInfo, ...]
    # False when the licence table has no row for the id (the catalogue was not synced).
    in_table: bool = True

    @functools.cached_property
    def term_types(self) -> frozenset[str]:
        return frozenset(term.type for term in self.terms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "category": self.category,
            "review_required": self.review_required,
            "url": self.url,
            "curated": self.curated,
        }


def missing_licence_info(licence_id: str) -> LicenceInfo:
    return LicenceInfo(
        id=licence_id,
        name=f"{licence_id} (not in the licence table; run manage.py licences_sync)",
        category="unknown",
        review_required=True,
        url="https://spdx.org/licenses/",
        curated=False,
        terms=(),
        in_table=False,
    )


def base_licence_id(item: str) -> str:
    """'GPL-2.0-only WITH Classpath-exception-2.0' -> 'GPL-2.0-only'."""
    return item.split(" WITH ", 1)[0].strip()


@functools.lru_cache(maxsize=4096)
def expression_alternatives(text: str) -> tuple[tuple[tuple[str, ...], ...], str]:
    """(alternatives, problem): the expression's choices of licences, or the unknown licence
    with a problem when a stored expression no longer parses."""
    if not text:
        return (), ""
    try:
        return tuple(tuple(choice) for choice in parsed(text).alternatives()), ""
    except LicenceError as error:
        return ((UNKNOWN_LICENCE_ID,),), f"the stored licence '{text}' no longer parses: {error}"


# The kind of source an upstream card's declared training data is (a Hub dataset reference).
UPSTREAM_DATA = "upstream_data"


@dataclass(frozen=True)
class Source:
    """Something whose licence binds the version: itself, an ancestor or a training dataset."""

    kind: str  # "self" | "ancestor" | "dataset" | UPSTREAM_DATA
    ref: str
    object_type: str  # "version" | "dataset_version"
    object_id: int
    expression: str
    field: str  # which field the expression came from; "" when none is set
    concluded: bool
    upstream: bool
    evidence: bool
    steps: tuple[Step, ...]  # from the version to this source, both included
    alternatives: tuple[tuple[str, ...], ...]
    problem: str = ""
    # The declared licence was mapped from an ambiguous Hub id: compliance must conclude it.
    review: bool = False

    @property
    def missing(self) -> bool:
        return not self.expression

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "ref": self.ref,
            "object_type": self.object_type,
            "id": self.object_id,
            "expression": self.expression,
            "field": self.field,
            "concluded": self.concluded,
            "alternatives": [list(alternative) for alternative in self.alternatives],
            "path": path_text(self.steps),
            "steps": [step.to_dict() for step in self.steps],
            **({"problem": self.problem} if self.problem else {}),
        }


@dataclass(frozen=True)
class Obligation:
    source: Source
    alternative: tuple[str, ...]
    licence: LicenceInfo
    term: TermInfo
    steps: tuple[Step, ...]

    @property
    def path(self) -> str:
        return path_text(self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "licence": self.licence.id,
            "source": self.source.ref,
            "source_kind": self.source.kind,
            "alternative": (
                " AND ".join(self.alternative) if len(self.source.alternatives) > 1 else None
            ),
            **self.term.to_dict(),
            "path": self.path,
            "steps": [step.to_dict() for step in self.steps],
        }


def _licence_steps(licence: LicenceInfo, term: TermInfo | None = None) -> tuple[Step, ...]:
    steps = (Step("licence", licence.id),)
    return (*steps, Step("clause", term.clause)) if term else steps


class LineageView:
    """The version's ancestry held in memory: edges child → parent, the ancestors and the
    training-data uses, as lineage read them in one query (`lineage.selectors.ancestry`)."""

    def __init__(self, version, ancestry: Ancestry) -> None:
        self.version = version
        self.own = AncestryNode(
            id=version.pk,
            ref=str(version),
            licence_declared=version.licence_declared,
            licence_concluded=version.licence_concluded,
            upstream=version.model.kind == "upstream",
            evidence=bool(version.hub_revision) and not version.unresolved,
            unresolved=version.unresolved,
            review=version.licence_review_required,
        )
        self.versions = {**ancestry.ancestors, version.pk: self.own}
        self.parents: dict[int, list[AncestryEdge]] = {}
        for edge in ancestry.edges:
            self.parents.setdefault(edge.child_id, []).append(edge)
        # dataset version id -> [(user version id, role), ...]
        self.data_users: dict[int, list[tuple[int, str]]] = {}
        for use in ancestry.training:
            self.data_users.setdefault(use.dataset_version_id, []).append(
                (use.version_id, use.role)
            )
        self.dataset_versions = ancestry.datasets
        self._version_step = {
            node.id: Step("version", node.ref, node.id) for node in self.versions.values()
        }
        self._reach: dict[frozenset[str] | None, dict[int, tuple[int, tuple[Step, ...]]]] = {}

    def reach(self, relations: frozenset[str] | None) -> dict[int, tuple[int, tuple[Step, ...]]]:
        """Ancestor id -> (hops, steps) of a shortest path from the version to it, following
        only edges whose relation is in `relations` (all edges when None). Breadth-first; each
        path extends its parent's, so the steps are built once per ancestor."""
        if relations not in self._reach:
            found: dict[int, tuple[int, tuple[Step, ...]]] = {
                self.version.pk: (0, (self._version_step[self.version.pk],))
            }
            queue = deque([self.version.pk])
            while queue:
                node = queue.popleft()
                hops, steps = found[node]
                for edge in self.parents.get(node, ()):
                    if edge.parent_id in found:
                        continue
                    # Nobody knows how an "unknown" child was made: every term may follow it.
                    if (
                        relations is not None
                        and edge.relation not in relations
                        and edge.relation != Relation.UNKNOWN
                    ):
                        continue
                    found[edge.parent_id] = (
                        hops + 1,
                        (*steps, Step("edge", edge.relation), self._version_step[edge.parent_id]),
                    )
                    queue.append(edge.parent_id)
            self._reach[relations] = found
        return self._reach[relations]

    def dataset_route(
        self, dataset_version_id: int, relations: frozenset[str] | None
    ) -> tuple[Step, ...] | None:
        """The shortest path to a training dataset through versions reachable by `relations`."""
        reach = self.reach(relations)
        routes = [
            (reach[user][0], user, role)
            for user, role in self.data_users.get(dataset_version_id, ())
            if user in reach
        ]
        if not routes:
            return None
        _, user, role = min(routes)
        dataset_version = self.dataset_versions[dataset_version_id]
        return (
            *reach[user][1],
            Step("edge", f"trained on ({role})"),
            Step("dataset", dataset_version.ref, dataset_version_id),
        )


def _source(*, kind: str, object_type: str, node: AncestryNode, steps: tuple[Step, ...]) -> Source:
    concluded = bool(node.licence_concluded.strip())
    expression = node.licence_concluded.strip() or node.licence_declared.strip()
    if expression == NO_ASSERTION:
        expression = ""  # declared as "no licence information": missing, like no declaration
    alternatives, problem = expression_alternatives(expression)
    return Source(
        kind=kind,
        ref=node.ref,
        object_type=object_type,
        object_id=node.id,
        expression=expression,
        field=("licence_concluded" if concluded else "licence_declared" if expression else ""),
        concluded=concluded,
        upstream=node.upstream,
        evidence=concluded or node.evidence,
        steps=steps,
        alternatives=alternatives,
        problem=problem,
        review=node.review and not concluded,
    )


def collect_sources(lineage: LineageView) -> list[Source]:
    """The version itself, every ancestor (nearest first) and every training dataset."""
    reach = lineage.reach(None)
    own = lineage.version.pk
    sources = [_source(kind="self", object_type="version", node=lineage.own, steps=reach[own][1])]
    for ancestor_id, (_, steps) in sorted(reach.items(), key=lambda item: (item[1][0], item[0])):
        if ancestor_id != own:
            sources.append(
                _source(
                    kind="ancestor",
                    object_type="version",
                    node=lineage.versions[ancestor_id],
                    steps=steps,
                )
            )
    for dataset_version_id, dataset_version in sorted(lineage.dataset_versions.items()):
        route = lineage.dataset_route(dataset_version_id, None)
        if route is not None:
            sources.append(
                _source(
                    kind=UPSTREAM_DATA if dataset_version.declared else "dataset",
                    object_type="dataset_version",
                    node=dataset_version,
                    steps=route,
                )
            )
    return sources


def licence_ids_of(sources: Iterable[Source]) -> set[str]:
    return {
        base_licence_id(item)
        for source in sources
        for alternative in source.alternatives
        for item in alternative
    }


@dataclass
class VersionObligations:
    version: Any
    sources: list[Source]
    licences: dict[str, LicenceInfo]
    obligations: list[Obligation] = field(default_factory=list)
    _index: dict[tuple[int, tuple[str, ...]], list[Obligation]] | None = field(
        default=None, repr=False
    )

    def licences_of(self, alternative: Sequence[str]) -> list[LicenceInfo]:
        seen: dict[str, LicenceInfo] = {}
        for item in alternative:
            licence_id = base_licence_id(item)
            seen.setdefault(licence_id, self.licences[licence_id])
        return list(seen.values())

    def of(self, source: Source, alternative: Sequence[str]) -> list[Obligation]:
        if self._index is None:
            self._index = {}
            for obligation in self.obligations:
                key = (id(obligation.source), obligation.alternative)
                self._index.setdefault(key, []).append(obligation)
        return self._index.get((id(source), tuple(alternative)), [])

    @property
    def own(self) -> Source:
        return self.sources[0]

    def to_dict(self) -> dict[str, Any]:
        own = self.own
        return {
            "version": str(self.version),
            "version_id": self.version.pk,
            "licence": {
                "expression": own.expression,
                "field": own.field,
                "alternatives": [list(alternative) for alternative in own.alternatives],
            },
            "sources": [source.to_dict() for source in self.sources],
            "licences": {
                licence_id: info.to_dict() for licence_id, info in sorted(self.licences.items())
            },
            "obligations": [obligation.to_dict() for obligation in self.obligations],
        }


def resolve_obligations(
    lineage: LineageView, sources: list[Source], licences: dict[str, LicenceInfo]
) -> VersionObligations:
    """Attach to each source alternative the terms that reach the version, with their paths."""
    result = VersionObligations(version=lineage.version, sources=sources, licences=licences)
    for source in sources:
        for alternative in source.alternatives:
            for licence in result.licences_of(alternative):
                for term in licence.terms:
                    steps = _carried_steps(lineage, source, term)
                    if steps is not None:
                        result.obligations.append(
                            Obligation(
                                source=source,
                                alternative=alternative,
                                licence=licence,
                                term=term,
                                steps=steps + _licence_steps(licence, term),
                            )
                        )
    return result


def _carried_steps(lineage: LineageView, source: Source, term: TermInfo) -> tuple[Step, ...] | None:
    relations = frozenset(term.carries_through)
    if source.kind == "self":
        return source.steps
    if source.kind == "ancestor":
        hit = lineage.reach(relations).get(source.object_id)
        return None if hit is None else hit[1]
    if TRAINED_ON not in relations:
        return None
    return lineage.dataset_route(source.object_id, relations)
