"""Typed answers of the Python client, built from the API's JSON.

Each field is named as in the answer (tests/client check them against the server's OpenAPI
schema and answers); timestamps become `datetime`s and lists become tuples, so results are
frozen all the way down except for free-form JSON (`dict` fields).
"""

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, fields
from datetime import datetime
from typing import Any, TypeVar, get_type_hints

T = TypeVar("T")

FINISHED_STATUSES = ("succeeded", "failed", "cancelled")


def from_json(cls: type[T], data: Mapping[str, Any], **given: Any) -> T:
    """`cls` with each field read from `data` under its own name, except those `given`."""
    hints = get_type_hints(cls)
    values = dict(given)
    for field in fields(cls):  # type: ignore[arg-type]  # every `cls` here is a dataclass
        if field.name in given:
            continue
        # A field with a default is newer than some servers: they leave it out.
        if field.name not in data and field.default is not MISSING:
            continue
        values[field.name] = _converted(hints[field.name], data[field.name])
    return cls(**values)


def _converted(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    if hint in (datetime, datetime | None):
        return datetime.fromisoformat(value)
    if isinstance(value, list):
        return tuple(value)
    return value


@dataclass(frozen=True)
class Version:
    """A model version, as `GET /api/v1/versions/{id}/` answers it."""

    id: int
    ref: str
    model: str
    model_id: int
    version: str
    stage: str
    description: str
    artefact_uri: str
    artefact_digest: str
    artefact_size: int | None
    parameter_count: int | None
    licence_declared: str
    licence_concluded: str
    risk_tier: str
    intended_use: str
    out_of_scope_uses: str
    known_limitations: str
    uses_sensitive_personal_data: bool
    domain: str
    hub_repo_id: str
    hub_revision: str
    registered_by: str
    registered_at: datetime
    updated_at: datetime
    # An upstream base named by a card but not imported: no artefact, no licence evidence.
    unresolved: bool = False
    # The declared licence came from an ambiguous Hub id; compliance must conclude it.
    licence_review_required: bool = False


@dataclass(frozen=True)
class DatasetVersion:
    id: int
    ref: str
    dataset: str
    version: str
    sha256: str
    size_bytes: int
    row_count: int | None
    uri: str
    licence_declared: str
    licence_concluded: str
    contains_personal_data: bool
    sensitive_attributes: tuple[str, ...]
    known_biases: str
    intended_use: str
    registered_by: str
    registered_at: datetime
    # A Hub dataset an upstream model card names: no files, so no digest (`sha256` is "").
    reference: bool = False


@dataclass(frozen=True)
class CheckRow:
    """One gate check: `required` by the stage policy or informative, and `waiver` (who waived
    it, why, until when) when a failure is waived."""

    check: str
    passed: bool
    required: bool
    reasons: tuple[str, ...]
    evidence: dict[str, Any]
    waiver: dict[str, Any] | None

    @property
    def blocking(self) -> bool:
        return self.required and not self.passed and not self.waiver


def _checks(rows: list[Mapping[str, Any]]) -> tuple[CheckRow, ...]:
    return tuple(from_json(CheckRow, row) for row in rows)


@dataclass(frozen=True)
class GateResult:
    """May `version` enter `stage`? The answer of `GET /api/v1/versions/{id}/gate/`."""

    version: str
    version_id: int
    from_stage: str
    stage: str
    use: str
    distribution: str
    passed: bool
    artefact_digest: str
    policy: dict[str, Any]
    checks: tuple[CheckRow, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "GateResult":
        return from_json(cls, data, checks=_checks(data["checks"]))

    @property
    def failures(self) -> tuple[CheckRow, ...]:
        return tuple(check for check in self.checks if check.blocking)


@dataclass(frozen=True)
class ComplianceStatus:
    """Does the version still pass the gate of the stage it is in, and the next one it wants?
    The answer of `GET /api/v1/versions/{id}/compliance/`, recomputed by the server on asking.
    `state` is compliant, ready, awaiting_approval, blocked, held or out_of_compliance (None
    for a version no gate judges, e.g. archived); `failing` lists each failing check with the
    stage it fails for and its reasons; `action` says what to do."""

    version: str
    stage: str
    state: str | None
    current_passed: bool | None = None
    target_stage: str = ""
    target_passed: bool | None = None
    failing: tuple[dict[str, Any], ...] = ()
    action: str = ""
    gated: bool = False
    out_of_compliance_since: datetime | None = None
    computed_at: datetime | None = None

    @property
    def compliant(self) -> bool:
        """False when it no longer passes the gate of its own stage or is held."""
        return self.state not in ("out_of_compliance", "held") and self.current_passed is not False


@dataclass(frozen=True)
class Decision:
    """A recorded promotion decision (passed or refused), with the checks it relied on."""

    id: int
    version: str
    from_stage: str
    to_stage: str
    use: str
    distribution: str
    passed: bool
    results: tuple[CheckRow, ...]
    artefact_digest: str
    policy: dict[str, Any]
    justification: str
    actor: str
    decided_at: datetime

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Decision":
        return from_json(cls, data, results=_checks(data["results"]))


@dataclass(frozen=True)
class EvaluationRun:
    """An evaluation of a version's weights on a suite. `result` holds the overall, per-group
    and fairness metrics once it succeeded; `findings` the suite's limits it breaks."""

    id: int
    version: str
    version_id: int
    model: str
    suite: str
    suite_id: int
    status: str
    evaluator: str
    artefact_digest: str
    dataset_sha256: str
    base_version: str | None
    device_requested: str
    device: str
    queue: str
    progress: dict[str, Any]
    requested_by: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    samples: int | None
    duration_s: float | None
    error: str
    result: dict[str, Any] | None
    findings: tuple[dict[str, Any], ...]

    @property
    def finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    @property
    def passed(self) -> bool:
        """Succeeded and meets every quality and fairness limit of its suite."""
        return self.status == "succeeded" and not self.findings


@dataclass(frozen=True)
class Evaluations:
    """Evaluations of one version requested together, as `POST /api/v1/versions/{ref}/
    evaluations/` answers (202): a run per suite, and the ids of those this request queued
    (`created`); the others were already queued or running, and are shared."""

    version: str
    runs: tuple[EvaluationRun, ...]
    created: tuple[int, ...]

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Evaluations":
        return cls(
            version=data["version"],
            runs=tuple(from_json(EvaluationRun, run) for run in data["runs"]),
            created=tuple(run["id"] for run in data["runs"] if run["created"]),
        )

    @property
    def finished(self) -> bool:
        return all(run.finished for run in self.runs)

    @property
    def passed(self) -> bool:
        """Every run succeeded and meets every limit of its suite."""
        return all(run.passed for run in self.runs)


@dataclass(frozen=True)
class Lineage:
    """The lineage graph around a version (`focus`): version and dataset nodes, derivation
    and training-data edges, and the holds on any of them."""

    focus: str
    truncated: bool
    nodes: tuple[dict[str, Any], ...]
    edges: tuple[dict[str, Any], ...]
    holds: tuple[dict[str, Any], ...]

    def _into_focus(self, kind: str, key: str) -> dict[str | None, str]:
        refs = {node["id"]: node["ref"] for node in self.nodes}
        return {
            refs[edge["source"]]: edge[key]
            for edge in self.edges
            if edge["kind"] == kind and edge["target"] == self.focus
        }

    @property
    def parents(self) -> dict[str | None, str]:
        """The focus version's parents: ref (None when hidden from you) → relation."""
        return self._into_focus("derivation", "relation")

    @property
    def datasets(self) -> dict[str | None, str]:
        """The data the focus version was trained on: dataset version ref → role."""
        return self._into_focus("training_data", "role")
