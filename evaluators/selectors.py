"""Reads of suites and runs, restricted to what a user may see, and the evidence gates use.

A run counts as evidence for a version ("valid") when it succeeded on exactly the version's
registered weights (`artefact_digest`) and the suite's pinned dataset (`dataset_sha256`), and
finished within the suite's freshness window. Every function here does a bounded number of
queries whatever the number of runs.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils import timezone

from evaluators.engine.names import (
    EMBEDDING_HEAD,
    PEFT_ADAPTER,
    QUALITY_METRICS,
    SEQUENCE_CLASSIFICATION,
    TABULAR_LINEAR,
)
from evaluators.engine.thresholds import Finding, check_fairness, check_quality, check_regression
from evaluators.models import EvaluationRun, EvaluationSuite, RunStatus
from evaluators.sources import SourceError
from lineage.models import LineageEdge, Relation
from lineage.selectors import ancestor_ids, pinned_parents, root_ids
from registry.models import DatasetVersion, ModelVersion
from registry.selectors import (
    as_id,
    dataset_versions_visible_to,
    is_compliance,
    owned_or_shared,
    versions_visible_to,
)
from registry.types import Reader


def suites_visible_to(user: Reader) -> QuerySet[EvaluationSuite]:
    suites = EvaluationSuite.objects.select_related(
        "team", "created_by", "dataset_version__dataset"
    ).prefetch_related("models")
    if is_compliance(user):
        return suites
    return suites.filter(owned_or_shared(user, "team_id", "visibility"))


def runs_visible_to(user: Reader) -> QuerySet[EvaluationRun]:
    """Runs the user may see: a run names its version, its suite (with the dataset's digest and
    results about its rows) and the version it was compared with, so all three must be visible.
    Compliance staff may run one team's private suite on a version another team sees."""
    runs = EvaluationRun.objects.select_related(
        "suite",
        "version__model",
        "base_version__model",
        "requested_by",
        "result",
    )
    if is_compliance(user):
        return runs
    visible = versions_visible_to(user).values("pk")
    return runs.filter(
        Q(base_version__isnull=True) | Q(base_version__in=visible),
        version__in=visible,
        suite__in=suites_visible_to(user).values("pk"),
    )


def suite_by_ref(user: Reader, ref: int | str) -> EvaluationSuite | None:
    """A suite by numeric id or name, among those the user may see."""
    suites = suites_visible_to(user)
    if isinstance(ref, int) or str(ref).isdigit():
        pk = as_id(str(ref))
        return suites.filter(pk=pk).first() if pk is not None else None
    return suites.filter(name=str(ref).strip()).first()


def dataset_version_by_ref(user: Reader, ref: int | str) -> DatasetVersion | None:
    """A dataset version by numeric id or `DATASET@VERSION`, among those the user may see."""
    versions = dataset_versions_visible_to(user)
    if isinstance(ref, int) or str(ref).isdigit():
        pk = as_id(str(ref))
        return versions.filter(pk=pk).first() if pk is not None else None
    name, sep, label = str(ref).strip().rpartition("@")
    if not sep or not name or not label:
        return None
    return versions.filter(dataset__name=name, version=label).first()


# --- How a version is evaluated ----------------------------------------------------------------


def evaluator_kind(version: ModelVersion) -> str | None:
    """The evaluator plug-in for a version, from the files its manifest lists."""
    paths = {file.get("path") for file in (version.artefact_manifest or {}).get("files", [])}
    if "adapter_config.json" in paths:
        return PEFT_ADAPTER
    if {"head_config.json", "head.safetensors"} <= paths:
        return EMBEDDING_HEAD
    if {"tabular_config.json", "model.safetensors"} <= paths:
        return TABULAR_LINEAR
    if "config.json" in paths:
        return SEQUENCE_CLASSIFICATION
    return None


def evaluation_base(version: ModelVersion) -> tuple[ModelVersion, str]:
    """The pinned ancestor whose files an adapter or head runs on, and its pinned digest.

    The parent recorded with relation `adapter` (LoRA, or a head on a frozen feature
    extractor); otherwise the single root base model the version descends from (a head
    fine-tuned from another head still runs on their common encoder). Raises SourceError when
    lineage does not name exactly one.
    """
    adapter_edges = list(
        LineageEdge.objects.filter(child=version, relation=Relation.ADAPTER).select_related(
            "parent__model"
        )[:2]
    )
    if len(adapter_edges) > 1:
        raise SourceError(
            f"{version} has several `adapter` parents, so which base to evaluate it on is "
            "ambiguous; record one base with relation `adapter`."
        )
    if adapter_edges:
        edge = adapter_edges[0]
    else:
        root_edges = list(
            LineageEdge.objects.filter(
                parent_id__in=root_ids(version.pk),
                child_id__in=ancestor_ids(version.pk, include_self=True),
            ).select_related("parent__model")
        )
        bases = {edge.parent_id: edge for edge in root_edges}
        if len(bases) != 1:
            found = "no base model" if not bases else f"{len(bases)} root base models"
            raise SourceError(
                f"{version} is evaluated on top of a base model, but its lineage names "
                f"{found}; record the base with relation `adapter` "
                "(POST /api/v1/registrations/ with parents, or `pedigree register --parent`)."
            )
        edge = next(iter(bases.values()))
    if edge.parent.artefact_digest != edge.parent_digest:
        raise SourceError(
            f"The base {edge.parent} now has artefact {edge.parent.artefact_digest[:12]}…, not "
            f"the {edge.parent_digest[:12]}… pinned when {version}'s lineage was recorded."
        )
    return edge.parent, edge.parent_digest


# --- Evidence for gates ------------------------------------------------------------------------


def suites_for(version: ModelVersion) -> QuerySet[EvaluationSuite]:
    """The suites that apply to a version: those attached to its model, with their datasets."""
    return (
        EvaluationSuite.objects.filter(models=version.model_id)
        .select_related("dataset_version__dataset")
        .order_by("name")
    )


# The newest succeeded run per (version, suite) of the version's current weights on the suite's
# pinned dataset: no newer one exists. Written in SQL because the gate asks it on every call and
# Django took three times as long to build it as the database to answer it.
_LATEST_VALID_RUN_IDS = """
SELECT r.id FROM {run} r
  JOIN {version} v ON v.id = r.version_id
  JOIN {suite} s ON s.id = r.suite_id
 WHERE r.version_id IN ({versions}) AND r.suite_id IN ({suites}) AND r.status = %s
   AND r.artefact_digest = v.artefact_digest AND r.dataset_sha256 = s.dataset_sha256
   AND NOT EXISTS (
       SELECT 1 FROM {run} n
        WHERE n.version_id = r.version_id AND n.suite_id = r.suite_id AND n.status = r.status
          AND n.artefact_digest = r.artefact_digest AND n.dataset_sha256 = r.dataset_sha256
          AND (n.finished_at > r.finished_at OR (n.finished_at = r.finished_at AND n.id > r.id)))
"""


def latest_valid_runs(
    version_ids: list[int], suites: Sequence[EvaluationSuite]
) -> dict[tuple[int, int], EvaluationRun]:
    """The newest succeeded run per (version, suite) of the version's current weights on the
    suite's pinned dataset, whatever its age (see `is_fresh`), with its result; `run.suite` is
    the given suite object. One query."""
    if not version_ids or not suites:
        return {}
    by_id = {suite.pk: suite for suite in suites}
    latest = _LATEST_VALID_RUN_IDS.format(
        run=EvaluationRun._meta.db_table,
        version=ModelVersion._meta.db_table,
        suite=EvaluationSuite._meta.db_table,
        versions=", ".join(["%s"] * len(version_ids)),
        suites=", ".join(["%s"] * len(by_id)),
    )
    runs = (
        EvaluationRun.objects.filter(
            pk__in=RawSQL(latest, [*version_ids, *by_id, RunStatus.SUCCEEDED])  # noqa: S611
        )
        .select_related("result")
        .only("suite_id", "version_id", "artefact_digest", "finished_at", "device", "result")
        .order_by()
    )
    found: dict[tuple[int, int], EvaluationRun] = {}
    for run in runs:
        run.suite = by_id[run.suite_id]
        found[(run.version_id, run.suite_id)] = run
    return found


def is_fresh(run: EvaluationRun, *, now: datetime | None = None) -> bool:
    now = now or timezone.now()
    return run.finished_at is not None and run.finished_at >= now - timedelta(
        days=run.suite.freshness_days
    )


def run_findings(run: EvaluationRun) -> list[Finding]:
    """Quality and fairness findings of a succeeded run against its suite's current limits."""
    metrics = run.result.metrics_dict()
    return [
        *check_quality(metrics, run.suite.min_quality),
        *check_fairness(metrics, run.suite.max_fairness_gaps),
    ]


def evaluate_command(version: ModelVersion, suite: EvaluationSuite) -> str:
    return f"`pedigree evaluate {version} --suite {suite.name}`"


def missing_evidence_reason(
    version: ModelVersion, suite: EvaluationSuite, run: EvaluationRun | None
) -> str:
    """Why `version` has no valid evaluation on `suite` (`run`: its newest one, stale or None)."""
    if run is None:
        why = f"no valid evaluation of {version} (sha256 {version.artefact_digest[:12]}…)"
    else:
        why = (
            f"the latest evaluation of {version} (run #{run.pk}, {run.finished_at:%Y-%m-%d}) is "
            f"older than the suite's {suite.freshness_days}-day freshness window"
        )
    return f"{suite.name}: {why}; run {evaluate_command(version, suite)}"


@dataclass(frozen=True)
class SuiteEvidence:
    suite: EvaluationSuite
    run: EvaluationRun | None  # the valid run, None when there is none
    reason: str = ""  # why there is none

    def to_dict(self) -> dict[str, Any]:
        run = self.run
        return {
            "suite": self.suite.name,
            "suite_id": self.suite.pk,
            "dataset_sha256": self.suite.dataset_sha256,
            "run": run.pk if run else None,
            "artefact_digest": run.artefact_digest if run else None,
            "finished_at": run.finished_at.isoformat() if run and run.finished_at else None,
            "device": run.device if run else None,
        }


def evaluation_evidence(
    version: ModelVersion,
    suites: Sequence[EvaluationSuite] | None = None,
    runs: dict[tuple[int, int], EvaluationRun] | None = None,
) -> list[SuiteEvidence]:
    """Per suite (default: those applying to the version), its valid run or why there is none.
    Two queries, fewer when given the suites or their `latest_valid_runs`."""
    suites = list(suites_for(version)) if suites is None else suites
    runs = latest_valid_runs([version.pk], suites) if runs is None else runs
    now = timezone.now()
    evidence = []
    for suite in suites:
        run = runs.get((version.pk, suite.pk))
        if run is not None and is_fresh(run, now=now):
            evidence.append(SuiteEvidence(suite, run))
        else:
            reason = missing_evidence_reason(version, suite, run)
            evidence.append(SuiteEvidence(suite, None, reason))
    return evidence


@dataclass(frozen=True)
class ParentComparison:
    """The child's run against one parent's valid run on the same suite."""

    parent: ModelVersion
    relation: str
    run: EvaluationRun | None
    reason: str = ""  # why there is no parent run to compare with
    findings: list[Finding] = field(default_factory=list)
    deltas: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "parent": str(self.parent),
            "parent_id": self.parent.pk,
            "relation": self.relation,
            "parent_run": self.run.pk if self.run else None,
            "parent_digest": self.run.artefact_digest if self.run else None,
            "deltas": self.deltas,
            "reason": self.reason,
            "findings": [finding.to_dict() for finding in self.findings],
        }


def comparable_parent_edges(
    version: ModelVersion, edges: list[LineageEdge] | None = None
) -> list[LineageEdge]:
    """The parents a version's quality is compared with on its suites.

    An embedding head's `adapter` parent is the frozen encoder it runs on, which has no
    classifier of its own and so cannot be evaluated on a classification suite: it is left
    out. Every other parent (the base of a LoRA adapter, a fine-tune's parent, each model of a
    merge) must not be better than the child beyond the suite's allowed regression.
    """
    edges = pinned_parents(version) if edges is None else edges
    if evaluator_kind(version) == EMBEDDING_HEAD:
        edges = [edge for edge in edges if edge.relation != Relation.ADAPTER]
    return edges


def parent_comparisons(
    version: ModelVersion,
    suite_runs: dict[int, EvaluationRun],
    edges: list[LineageEdge],
    runs: dict[tuple[int, int], EvaluationRun] | None = None,
) -> dict[int, list[ParentComparison]]:
    """Per suite id of `suite_runs` (the child's run on it), the comparison with each parent's
    valid run on the same suite (pinned to the digest recorded on the lineage edge). One query,
    none when given `runs` that hold the parents' `latest_valid_runs`.
    """
    if not edges or not suite_runs:
        return {suite_id: [] for suite_id in suite_runs}
    if runs is None:
        suites = [run.suite for run in suite_runs.values()]
        runs = latest_valid_runs([edge.parent_id for edge in edges], suites)
    parent_runs = runs
    now = timezone.now()
    comparisons: dict[int, list[ParentComparison]] = {}
    for suite_id, child_run in suite_runs.items():
        suite = child_run.suite
        rows = []
        for edge in edges:
            parent_run = parent_runs.get((edge.parent_id, suite_id))
            if parent_run is not None and parent_run.artefact_digest != edge.parent_digest:
                reason = (
                    f"{suite.name}: parent {edge.parent}'s evaluations are of weights "
                    f"{parent_run.artefact_digest[:12]}…, not the {edge.parent_digest[:12]}… "
                    "pinned on the lineage edge"
                )
                parent_run = None
            elif parent_run is None or not is_fresh(parent_run, now=now):
                reason = (
                    f"{missing_evidence_reason(edge.parent, suite, parent_run)}, so {version} "
                    "cannot be compared with its parent"
                )
                parent_run = None
            else:
                reason = ""
            if parent_run is None:
                rows.append(ParentComparison(edge.parent, edge.relation, None, reason))
                continue
            child, parent = child_run.result.overall, parent_run.result.overall
            rows.append(
                ParentComparison(
                    edge.parent,
                    edge.relation,
                    parent_run,
                    findings=check_regression(
                        child_run.result.metrics_dict(),
                        parent_run.result.metrics_dict(),
                        suite.max_regression,
                    ),
                    deltas={
                        metric: round(child[metric] - parent[metric], 6)
                        for metric in QUALITY_METRICS
                        if child.get(metric) is not None and parent.get(metric) is not None
                    },
                )
            )
        comparisons[suite_id] = rows
    return comparisons


# --- Dashboard and exports ---------------------------------------------------------------------


def latest_finished_runs(limit: int = 10) -> list[EvaluationRun]:
    return list(
        EvaluationRun.objects.filter(status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED])
        .select_related("suite", "version__model", "result")
        .order_by("-finished_at", "-id")[:limit]
    )


def failing_fairness(scan: int = 200) -> list[tuple[EvaluationRun, list[Finding]]]:
    """Among the latest `scan` succeeded runs, the newest per version and suite that breaks its
    suite's fairness limits, with the findings. One query."""
    runs = (
        EvaluationRun.objects.filter(status=RunStatus.SUCCEEDED)
        .select_related("suite", "version__model", "result")
        .order_by("-finished_at", "-id")[:scan]
    )
    seen: set[tuple[int, int]] = set()
    failing = []
    for run in runs:
        key = (run.version_id, run.suite_id)
        if key in seen:
            continue
        seen.add(key)
        if run.artefact_digest != run.version.artefact_digest:
            continue
        findings = check_fairness(run.result.metrics_dict(), run.suite.max_fairness_gaps)
        if findings:
            failing.append((run, findings))
    return failing


def exported_results(version: ModelVersion) -> list[dict[str, Any]]:
    """Overall metrics of the version's latest valid run on each suite attached to its model,
    for model cards and AI-BOMs (registered as an `EvaluationResultsProvider`)."""
    results = []
    for item in evaluation_evidence(version):
        if item.run is None:
            continue
        for metric, value in item.run.result.overall.items():
            if metric in QUALITY_METRICS and value is not None:
                results.append(
                    {
                        "task": item.suite.task,
                        "dataset": item.suite.dataset_version.dataset.name,
                        "dataset_type": item.suite.dataset_version.dataset.name,
                        "split": item.suite.dataset_version.version,
                        "metric": metric,
                        "value": value,
                        "source": f"Pedigree evaluation run #{item.run.pk} ({item.suite.name})",
                        "source_url": reverse("evaluation-run-detail", args=[item.run.pk]),
                    }
                )
    return results
