"""The one plug-in registry: everything the other apps contribute to the core.

The core never imports lineage, licensing or evaluators. Each app registers what it
contributes, as the typed contributions below, from its `AppConfig.ready()`; the core asks
`plugins` for them where it needs them, so it works with any subset of apps installed.
Contributions of one kind are used in registration order, which is INSTALLED_APPS order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import django_filters

if TYPE_CHECKING:
    from django.http import HttpRequest

    from registry.gates import CheckResult, GateContext, GateEvaluation
    from registry.models import DatasetVersion, EvidenceProposal, ModelVersion
    from registry.types import Actor, Reader


@dataclass(frozen=True)
class GateCheck:
    """A check the gate runs when a version asks to enter a stage; stage policies require
    checks by `name`."""

    name: str
    run: Callable[[GateContext], CheckResult]


@dataclass(frozen=True)
class InvolvementProvider:
    """Evidence for separation of duties: the ids of users who made a version besides whoever
    registered it (e.g. who ran its training run). None of them may approve it."""

    users: Callable[[ModelVersion], set[int]]


@dataclass(frozen=True)
class EvidenceProvider:
    """Part of what an approval binds to (`registry.evidence`): plain JSON data about the
    version (its parents, its ancestors' and training data's licences, the evaluation runs the
    gate reads). An approval stops counting when any part differs from what it saw."""

    name: str
    snapshot: Callable[[ModelVersion], dict[str, Any]]


@dataclass(frozen=True)
class EvidenceUsers:
    """The ids of the versions whose gate evidence includes a version (its descendants) or a
    dataset version (the versions trained on it and their descendants): a change to it that
    could weaken a check is protected when any of them is."""

    version_ids: Callable[[ModelVersion | DatasetVersion], list[int]]


@dataclass(frozen=True)
class EvidenceChange:
    """A kind of change to a version's protected evidence that an app makes (lineage: parents
    added, an edge corrected, a training run recorded), proposed by an engineer as an
    `EvidenceProposal` of that `kind`. `current(version)` is the JSON state the proposal's
    `before` recorded (a proposal whose `before` differs from it is stale; it may lock what the
    change writes, for the rest of the transaction); `apply(actor, proposal)` makes the change
    through the app's own service, as the compliance officer accepting it."""

    kind: str
    current: Callable[[ModelVersion], dict[str, Any]]
    apply: Callable[[Actor, EvidenceProposal], Any]


@dataclass(frozen=True)
class AnswerRedaction:
    """Hides from a reader what an answer about a version names that they may not see (an
    ancestor of another team's, its digest, its hold's reason): gate evaluations, recorded
    decisions and compliance statuses are computed once for everyone and redacted when shown.
    `redact(reader, version, data)` returns the JSON data rewritten."""

    redact: Callable[[Reader, ModelVersion, Any], Any]


@dataclass(frozen=True)
class ComplianceHold:
    """Stops a staged version that fell out of compliance, where its stage policy says so:
    `place(version, reason)` holds it and returns the hold's id; at most one app provides it."""

    place: Callable[[ModelVersion, str], int]


@dataclass(frozen=True)
class EvaluationResultsProvider:
    """Evaluation results shown in exports (SPDX 3.0 AI metrics, the model card's
    model-index): dicts with keys `task`, `dataset` (name), `metric`, `value` and optionally
    `dataset_type`, `split`, `source` (a name) with `source_url`."""

    results: Callable[[ModelVersion], list[dict[str, Any]]]


@dataclass(frozen=True)
class DashboardPanel:
    """A section of the compliance dashboard (the admin index): `template` is included with
    `data`, what `context(request)` returns."""

    title: str
    template: str
    context: Callable[[HttpRequest], dict[str, Any]]


@dataclass(frozen=True)
class Expiring:
    """An approval or waiver that lapses soon, as the dashboard lists it."""

    kind: str
    version: ModelVersion
    expires_at: datetime
    what: str
    url: str


@dataclass(frozen=True)
class ExpiringProvider:
    """Evidence of an app that lapses before the given time (soonest first, a bounded number
    of queries), for the dashboard's expiring list."""

    name: str
    before: Callable[[datetime], list[Expiring]]


@dataclass(frozen=True)
class WaiverLinks:
    """How to waive a failing check of an app that keeps its own waivers (the licence check's
    rules): given the gate's answer and the failing check's row, (label, url) per thing to waive,
    each url opening a form pre-filled from the violation."""

    check: str
    links: Callable[[GateEvaluation, dict[str, Any]], list[tuple[str, str]]]


@dataclass(frozen=True)
class VersionPanel:
    """A section of a version's admin page: `template` rendered with
    `context(request, version)`."""

    template: str
    context: Callable[[HttpRequest, ModelVersion], dict[str, Any]]


@dataclass(frozen=True)
class VersionSummary:
    """A short summary at the top of a version's admin page, under the verdict (e.g. its
    evaluation results): `template` rendered with `context(request, version)`."""

    template: str
    context: Callable[[HttpRequest, ModelVersion], dict[str, Any]]


@dataclass(frozen=True)
class TimelineEvent:
    """One dated event of a version's history, for its timeline; `url` opens the object."""

    at: datetime
    kind: str
    text: str
    url: str = ""


@dataclass(frozen=True)
class TimelineProvider:
    """The events of a version's history an app records (evaluations, holds...), besides the
    audit entries and gate decisions the core lists itself. A bounded number of queries."""

    name: str
    events: Callable[[ModelVersion], list[TimelineEvent]]


@dataclass(frozen=True)
class ComparisonSection:
    """A section of the side-by-side comparison of two versions (and of the evidence pack):
    `facts(reader, version)` maps row labels to values; numbers get a delta column."""

    title: str
    facts: Callable[[Reader, ModelVersion], dict[str, Any]]


@dataclass(frozen=True)
class EvidenceDocument:
    """A file of a version's evidence pack (the SPDX document, the model card...):
    `render(reader, version)` returns its text."""

    filename: str
    render: Callable[[Reader, ModelVersion], str]


@dataclass(frozen=True)
class VersionListFilter:
    """A query parameter of `/api/v1/versions/` besides the core's own."""

    name: str
    filter: django_filters.Filter


@dataclass(frozen=True)
class LicenceValidator:
    """Runs on every write of a licence expression field: takes (field name, value) and returns
    the canonical text, or raises `registry.errors.InvalidInput`."""

    validate: Callable[[str, Any], str]


class HubLicence(Protocol):
    """What a Hub licence id means: an SPDX expression, and whether a person must review it."""

    @property
    def expression(self) -> str: ...

    @property
    def review_required(self) -> bool: ...

    @property
    def reason(self) -> str: ...


class HubLicenceResolver(Protocol):
    """Maps a model card's `license` (plus `license_name`/`license_link` for `other`) to an
    SPDX expression; raises ValueError, with a message saying what to do, for an unknown id."""

    def __call__(
        self, hub_id: str, *, license_name: str | None, license_link: str | None
    ) -> HubLicence: ...


@dataclass(frozen=True)
class HubLicenceResolution:
    """How upstream imports read a Hub card's licence; at most one app provides it."""

    resolve: HubLicenceResolver


@dataclass(frozen=True)
class UpstreamParent:
    """A base an imported card declares, as the import found it: the version standing for it
    (possibly an unresolved reference), how the child was made from it, whether that relation
    was declared by the card or inferred (with the evidence), and whether the base's revision
    was pinned or taken as the newest one imported."""

    version: ModelVersion
    relation: str
    inferred: bool
    evidence: list[str]
    newest: bool


@dataclass(frozen=True)
class UpstreamLineage:
    """How imported upstream versions join the lineage; at most one app provides it.

    `lock()` is taken first in the import's transaction (lineage writes are serialised);
    `record(actor, child, parents)` records the declared bases as parents of `child`, raising
    `registry.errors` errors (e.g. a cycle) naming the card field `base_model`;
    `resolved(actor, version)` re-pins edges that pointed at `version` while it was an
    unresolved reference, now that it has an artefact; `training_data(actor, version,
    dataset_versions)` records the Hub datasets its card declares (reference dataset versions)
    as the version's training data."""

    lock: Callable[[], Any]
    record: Callable[[Any, ModelVersion, list[UpstreamParent]], Any]
    resolved: Callable[[Any, ModelVersion], Any]
    training_data: Callable[[Any, ModelVersion, list[DatasetVersion]], Any]


Contribution = (
    GateCheck
    | InvolvementProvider
    | EvidenceProvider
    | EvidenceUsers
    | EvidenceChange
    | ComplianceHold
    | AnswerRedaction
    | EvaluationResultsProvider
    | DashboardPanel
    | ExpiringProvider
    | WaiverLinks
    | VersionPanel
    | VersionSummary
    | TimelineProvider
    | ComparisonSection
    | EvidenceDocument
    | VersionListFilter
    | LicenceValidator
    | HubLicenceResolution
    | UpstreamLineage
)
C = TypeVar("C", bound=Contribution)


def _identity(contribution: Contribution) -> object:
    """What must be unique among contributions of one kind."""
    match contribution:
        case (
            GateCheck()
            | VersionListFilter()
            | EvidenceProvider()
            | TimelineProvider()
            | ExpiringProvider()
        ):
            return contribution.name
        case EvidenceDocument():
            return contribution.filename
        case EvidenceChange():
            return contribution.kind
        case DashboardPanel() | ComparisonSection():
            return contribution.title
        case WaiverLinks():
            return contribution.check
        case VersionPanel() | VersionSummary():
            return contribution.template
        case HubLicenceResolution() | ComplianceHold() | UpstreamLineage():
            return None  # there is only one
        case _:
            return contribution


class PluginRegistry:
    def __init__(self) -> None:
        self._contributions: dict[type, list[Any]] = {}

    def register(self, *contributions: Contribution) -> None:
        """Add contributions; registering one again is a no-op, but a second contribution
        under a name already taken (or a second Hub licence resolution) is an error."""
        for contribution in contributions:
            registered = self._contributions.setdefault(type(contribution), [])
            if contribution in registered:
                continue
            key = _identity(contribution)
            if any(_identity(other) == key for other in registered):
                named = f" as {key!r}" if key is not None else ""
                raise ValueError(f"another {type(contribution).__name__} is registered{named}")
            registered.append(contribution)

    def contributions(self, kind: type[C]) -> list[C]:
        return list(self._contributions.get(kind, []))


plugins = PluginRegistry()
