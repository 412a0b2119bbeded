"""Writes of suites and runs: defining suites, requesting, executing, cancelling, sweeping.

Every state change is audited in its transaction. A run's life on a worker is a sequence of
conditional UPDATEs keyed by the claim token, so a redelivered task, a worker that lost its
claim or a concurrent cancel can never record a second result:

    claim        queued (or running with a stale heartbeat) → running, new token
    heartbeat    running + token → progress, last_progress_at
    succeed      running + token → succeeded, plus the one result row (unique per run)
    fail         running + token → failed, with the error
    cancel       queued | running → cancelled (the worker notices at its next heartbeat)
    sweep        running with a stale heartbeat → queued again, or failed after N attempts
"""

import logging
import math
import os
import socket
import time
import uuid
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from evaluators.engine.names import (
    FAIRNESS_METRICS,
    KINDS_NEEDING_BASE,
    KNOWN_METRICS,
    QUALITY_METRICS,
    TABULAR_LINEAR,
)
from evaluators.models import (
    ACTIVE_STATUSES,
    Device,
    EvaluationResult,
    EvaluationRun,
    EvaluationSuite,
    Queue,
    RunStatus,
    Task,
)
from evaluators.selectors import (
    comparable_parent_edges,
    evaluation_base,
    evaluator_kind,
    parent_comparisons,
)
from evaluators.sources import (
    SourceError,
    locate_artefact,
    locate_dataset,
    verified_artefact_dir,
    verified_dataset_file,
)
from registry.audit import audit_record
from registry.errors import Conflict, InvalidInput, PermissionRefused, invalid_from_django
from registry.models import DatasetVersion, ModelVersion, RegisteredModel, Team
from registry.selectors import is_compliance, is_team_member, models_visible_to
from registry.services import require_team_write

logger = logging.getLogger(__name__)

SUITE_UPDATABLE = {
    "description",
    "visibility",
    "min_quality",
    "max_fairness_gaps",
    "max_regression",
    "freshness_days",
    "models",
}
MAX_SWEEP_BATCH = 100


# --- Suites ------------------------------------------------------------------------------------


def _limits(name: str, value: Any, allowed: Sequence[str]) -> dict[str, float]:
    if not isinstance(value, dict):
        raise InvalidInput.for_field(name, f"{name} must map metric names to numbers.")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise InvalidInput.for_field(
            name,
            f"{name} names unknown metric(s) {', '.join(unknown)}; use: {', '.join(allowed)}.",
        )
    limits = {}
    for metric, limit in value.items():
        if isinstance(limit, bool) or not isinstance(limit, int | float) or not (
            math.isfinite(limit) and 0 <= limit <= 1
        ):
            raise InvalidInput.for_field(
                name, f"{name}.{metric} must be a number from 0 to 1 (metrics are fractions)."
            )
        limits[metric] = float(limit)
    return limits


def _metric_names(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
        raise InvalidInput.for_field("metrics", "metrics must be a list of metric names.")
    unknown = [m for m in value if m not in KNOWN_METRICS]
    if unknown:
        raise InvalidInput.for_field(
            "metrics",
            f"Unknown metric(s) {', '.join(unknown)}; known: {', '.join(KNOWN_METRICS)}.",
        )
    return list(dict.fromkeys(value))


def _check_limits_computed(suite: EvaluationSuite) -> None:
    """Every limit must be on a metric the suite computes, and fairness needs attributes."""
    computed = set(suite.metrics or KNOWN_METRICS)
    for name in ("min_quality", "max_fairness_gaps", "max_regression"):
        missing = sorted(set(getattr(suite, name)) - computed)
        if missing:
            raise InvalidInput.for_field(
                name,
                f"{name} limits {', '.join(missing)}, which the suite does not compute; add "
                "them to metrics (or leave metrics empty to compute all).",
            )
    if suite.max_fairness_gaps and not suite.sensitive_columns:
        raise InvalidInput.for_field(
            "max_fairness_gaps",
            "Fairness limits need sensitive_columns (e.g. gender, age_band, region) to compare.",
        )


def _check_columns(
    task: str,
    input_column: str,
    feature_columns: list[str],
    label_column: str,
    sensitive_columns: Sequence[str],
) -> None:
    """Text suites read one input column, tabular suites numeric feature columns; every column
    is named once."""
    if task == Task.TEXT_CLASSIFICATION and (not input_column or feature_columns):
        raise InvalidInput.for_field(
            "input_column",
            "A text-classification suite reads one text column: give input_column and no "
            "feature_columns.",
        )
    if task == Task.TABULAR_CLASSIFICATION and (input_column or not feature_columns):
        raise InvalidInput.for_field(
            "feature_columns",
            "A tabular-classification suite reads numeric columns: give feature_columns and "
            "no input_column.",
        )
    columns = [*([input_column] if input_column else feature_columns), label_column]
    columns += list(sensitive_columns)
    if not all(isinstance(c, str) and c.strip() for c in columns):
        raise InvalidInput.for_field("sensitive_columns", "Column names must be non-empty text.")
    if len(set(columns)) != len(columns):
        raise InvalidInput.for_field(
            "sensitive_columns",
            "The input or feature columns, the label column and each sensitive column must be "
            "different columns.",
        )


def _models_attachable(actor, models: Sequence[RegisteredModel | str]) -> list[RegisteredModel]:
    """The models named, each visible to the actor, who must belong to its team (or be
    compliance staff): attaching a suite makes the model's gate read it."""
    names = [m.name if isinstance(m, RegisteredModel) else str(m) for m in models]
    found = {m.name: m for m in models_visible_to(actor).filter(name__in=names)}
    missing = [name for name in names if name not in found]
    if missing:
        raise InvalidInput.for_field(
            "models", f"No model(s) {', '.join(missing)} that you can see."
        )
    if not is_compliance(actor):
        foreign = [m.name for m in found.values() if not is_team_member(actor, m.team_id)]
        if foreign:
            raise PermissionRefused.for_field(
                "models",
                f"Only members of the owning team or compliance staff can attach or detach "
                f"suites for {', '.join(foreign)}.",
            )
    return [found[name] for name in dict.fromkeys(names)]


def _require_suite_write(actor, team: Team) -> None:
    """Suites are written by their team and by compliance staff, who set governance limits."""
    if not is_compliance(actor):
        require_team_write(actor, team)


def _full_clean(obj) -> None:
    try:
        obj.full_clean(exclude=["models"])
    except DjangoValidationError as error:
        raise invalid_from_django(error) from None


def _suite_snapshot(suite: EvaluationSuite, models: Sequence[RegisteredModel]) -> dict[str, Any]:
    return {
        "name": suite.name,
        "team": suite.team.slug,
        "visibility": suite.visibility,
        "dataset_version": str(suite.dataset_version),
        "dataset_sha256": suite.dataset_sha256,
        "task": suite.task,
        "input_column": suite.input_column,
        "feature_columns": suite.feature_columns,
        "label_column": suite.label_column,
        "sensitive_columns": suite.sensitive_columns,
        "positive_label": suite.positive_label,
        "metrics": suite.metrics,
        "batch_size": suite.batch_size,
        "seed": suite.seed,
        "min_group_size": suite.min_group_size,
        "min_quality": suite.min_quality,
        "max_fairness_gaps": suite.max_fairness_gaps,
        "max_regression": suite.max_regression,
        "freshness_days": suite.freshness_days,
        "models": sorted(m.name for m in models),
    }


@transaction.atomic
def suite_create(
    *,
    actor,
    name: str,
    team: Team,
    dataset_version: DatasetVersion,
    label_column: str,
    input_column: str = "",
    feature_columns: Sequence[str] = (),
    task: str = Task.TEXT_CLASSIFICATION,
    sensitive_columns: Sequence[str] = (),
    positive_label: str = "",
    metrics: Sequence[str] = (),
    batch_size: int = 32,
    seed: int = 0,
    min_group_size: int = 30,
    min_quality: dict[str, float] | None = None,
    max_fairness_gaps: dict[str, float] | None = None,
    max_regression: dict[str, float] | None = None,
    freshness_days: int = 90,
    visibility: str = "team",
    description: str = "",
    models: Sequence[RegisteredModel | str] = (),
) -> EvaluationSuite:
    """Define a suite on a dataset version whose file lies inside the artefact roots.

    The dataset's SHA-256 is pinned on the suite; runs check the file still hashes to it.
    """
    _require_suite_write(actor, team)
    if EvaluationSuite.objects.filter(name=name).exists():
        raise Conflict.for_field("name", f"An evaluation suite named '{name}' already exists.")
    _check_columns(task, input_column, list(feature_columns), label_column, sensitive_columns)
    try:
        locate_dataset(dataset_version)
    except SourceError as error:
        raise InvalidInput.for_field("dataset_version", str(error)) from None
    attached = _models_attachable(actor, models)
    suite = EvaluationSuite(
        name=name,
        team=team,
        visibility=visibility,
        description=description,
        dataset_version=dataset_version,
        dataset_sha256=dataset_version.sha256,
        task=task,
        input_column=input_column,
        feature_columns=list(feature_columns),
        label_column=label_column,
        sensitive_columns=list(sensitive_columns),
        positive_label=positive_label,
        metrics=_metric_names(list(metrics)),
        batch_size=batch_size,
        seed=seed,
        min_group_size=min_group_size,
        min_quality=_limits("min_quality", min_quality or {}, QUALITY_METRICS),
        max_fairness_gaps=_limits("max_fairness_gaps", max_fairness_gaps or {}, FAIRNESS_METRICS),
        max_regression=_limits("max_regression", max_regression or {}, QUALITY_METRICS),
        freshness_days=freshness_days,
        created_by=actor,
    )
    _full_clean(suite)
    _check_limits_computed(suite)
    try:
        with transaction.atomic():
            suite.save(force_insert=True)
    except IntegrityError as error:
        raise Conflict.for_field("name", f"Evaluation suite '{name}' already exists.") from error
    suite.models.set(attached)
    audit_record(
        actor=actor,
        action="evaluation_suite.create",
        obj=suite,
        after=_suite_snapshot(suite, attached),
    )
    return suite


@transaction.atomic
def suite_update(*, actor, suite: EvaluationSuite, changes: dict[str, Any]) -> EvaluationSuite:
    """Change a suite's limits, freshness window, description, visibility or models.

    What it measures (dataset, columns, metrics, batch size, seed, group size) is fixed, so
    its runs stay comparable; define a new suite to measure something else.
    """
    unknown = sorted(set(changes) - SUITE_UPDATABLE)
    if unknown:
        raise InvalidInput(
            f"These fields cannot be changed: {', '.join(unknown)}; they define what the suite "
            "measures, so define a new suite instead. Changeable: "
            f"{', '.join(sorted(SUITE_UPDATABLE))}.",
            fields={name: ["This field cannot be changed."] for name in unknown},
        )
    suite = EvaluationSuite.objects.select_for_update().select_related("team").get(pk=suite.pk)
    before_models = list(suite.models.all())
    _require_suite_write(actor, suite.team)
    before = _suite_snapshot(suite, before_models)
    models = before_models
    if "models" in changes:
        wanted = {m.name if isinstance(m, RegisteredModel) else str(m) for m in changes["models"]}
        current = {m.name: m for m in before_models}
        moved = [m for m in before_models if m.name not in wanted]
        added = _models_attachable(actor, sorted(wanted - set(current)))
        _models_attachable(actor, moved)
        models = [m for m in before_models if m.name in wanted] + added
    for name, value in changes.items():
        if name in ("min_quality", "max_regression"):
            value = _limits(name, value, QUALITY_METRICS)
        elif name == "max_fairness_gaps":
            value = _limits(name, value, FAIRNESS_METRICS)
        if name != "models":
            setattr(suite, name, value)
    _full_clean(suite)
    _check_limits_computed(suite)
    suite.save()
    if "models" in changes:
        suite.models.set(models)
    audit_record(
        actor=actor,
        action="evaluation_suite.update",
        obj=suite,
        before=before,
        after=_suite_snapshot(suite, models),
    )
    return suite


# --- Requesting and cancelling runs ------------------------------------------------------------


def _queue_for(device: str) -> str:
    """A run asking for CUDA goes to the GPU workers; `auto` and `cpu` to the CPU queue (a GPU
    host that also consumes `cpu` runs `auto` requests on its GPU)."""
    return Queue.GPU if device == Device.CUDA else Queue.CPU


def _require_run_permission(actor, version: ModelVersion, what: str) -> None:
    if not (is_compliance(actor) or is_team_member(actor, version.model.team_id)):
        raise PermissionRefused(
            f"Only members of team '{version.model.team.slug}' or compliance staff can {what} "
            f"evaluations of {version}."
        )


def _enqueue(run: EvaluationRun) -> None:
    from evaluators.tasks import evaluate_run

    transaction.on_commit(
        lambda: evaluate_run.apply_async(args=[run.pk], queue=run.queue), robust=True
    )


def run_request(
    *, actor, version: ModelVersion, suite: EvaluationSuite, device: str = Device.AUTO
) -> tuple[EvaluationRun, bool]:
    """Ask for an evaluation of `version`'s exact weights on `suite`; returns the run and whether
    it was created (an active run for the same version and suite is returned instead).

    The task is enqueued after the commit, on the `gpu` queue for `device="cuda"`.
    """
    _require_run_permission(actor, version, "request")
    if device not in Device.values:
        raise InvalidInput.for_field("device", f"Use one of: {', '.join(Device.values)}.")
    try:
        locate_artefact(version)
    except SourceError as error:
        raise InvalidInput.for_field("version", str(error)) from None
    kind = evaluator_kind(version)
    if kind is None:
        raise InvalidInput.for_field(
            "version",
            f"Pedigree cannot tell how to evaluate {version}: its files hold no config.json "
            "(transformers classifier), adapter_config.json (PEFT adapter) or "
            "head_config.json + head.safetensors (embedding head) or tabular_config.json "
            "(tabular linear model).",
        )
    if (kind == TABULAR_LINEAR) != (suite.task == Task.TABULAR_CLASSIFICATION):
        raise InvalidInput.for_field(
            "suite",
            f"{version} is a {kind} model, which cannot be evaluated on {suite.name}, a "
            f"{suite.task} suite; pick a suite of its task.",
        )
    base, base_digest = None, ""
    try:
        if kind in KINDS_NEEDING_BASE:
            base, base_digest = evaluation_base(version)
            locate_artefact(base)
        locate_dataset(suite.dataset_version)
    except SourceError as error:
        raise InvalidInput.for_field("version", str(error)) from None
    if suite.dataset_version.sha256 != suite.dataset_sha256:
        raise InvalidInput.for_field(
            "suite",
            f"Dataset {suite.dataset_version} no longer has the SHA-256 pinned by suite "
            f"{suite.name}; define a new suite.",
        )
    try:
        with transaction.atomic():
            active = (
                EvaluationRun.objects.select_for_update()
                .filter(version=version, suite=suite, status__in=ACTIVE_STATUSES)
                .first()
            )
            if active is not None:
                return active, False
            run = EvaluationRun.objects.create(
                suite=suite,
                version=version,
                artefact_digest=version.artefact_digest,
                dataset_sha256=suite.dataset_sha256,
                evaluator=kind,
                base_version=base,
                base_digest=base_digest,
                device_requested=device,
                queue=_queue_for(device),
                requested_by=actor,
            )
            audit_record(
                actor=actor,
                action="evaluation.requested",
                obj=run,
                after={
                    "version": str(version),
                    "suite": suite.name,
                    "artefact_digest": run.artefact_digest,
                    "dataset_sha256": run.dataset_sha256,
                    "base": str(base) if base else None,
                    "base_digest": base_digest or None,
                    "evaluator": kind,
                    "device": device,
                    "queue": run.queue,
                },
            )
            _enqueue(run)
    except IntegrityError:
        # A concurrent request created the active run first (the partial unique constraint).
        active = EvaluationRun.objects.filter(
            version=version, suite=suite, status__in=ACTIVE_STATUSES
        ).first()
        if active is None:
            raise
        return active, False
    return run, True


@transaction.atomic
def run_cancel(*, actor, run: EvaluationRun) -> EvaluationRun:
    """Cancel a queued or running run; a worker running it stops at its next heartbeat."""
    _require_run_permission(actor, run.version, "cancel")
    now = timezone.now()
    cancelled = EvaluationRun.objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES).update(
        status=RunStatus.CANCELLED,
        finished_at=now,
        claim_token=None,
        error=f"cancelled by {actor.username}",
    )
    run.refresh_from_db()
    if not cancelled:
        raise Conflict(
            f"Evaluation #{run.pk} has already {run.status}; there is nothing to cancel."
        )
    audit_record(
        actor=actor, action="evaluation.cancelled", obj=run, after={"status": run.status}
    )
    return run


# --- Executing a run (on a worker) -------------------------------------------------------------


class _ClaimLost(Exception):
    """The run was cancelled or taken over while this worker ran it."""


def _stale_before() -> Any:
    return timezone.now() - timedelta(seconds=settings.PEDIGREE_EVALUATION_STALE_SECONDS)


def worker_name(hostname: str | None = None) -> str:
    """Who runs an evaluation: the Celery node name (or host name) and the process id."""
    return f"{hostname or socket.gethostname()}:{os.getpid()}"


def _claim(run_id: int, worker: str) -> uuid.UUID | None:
    """Take the run with a conditional UPDATE: queued, or running with a heartbeat older than
    the stale timeout (its worker died and the broker redelivered the task)."""
    token = uuid.uuid4()
    now = timezone.now()
    with transaction.atomic():
        claimed = EvaluationRun.objects.filter(
            Q(status=RunStatus.QUEUED)
            | Q(status=RunStatus.RUNNING, last_progress_at__lt=_stale_before()),
            pk=run_id,
            attempts__lt=settings.PEDIGREE_EVALUATION_MAX_ATTEMPTS,
        ).update(
            status=RunStatus.RUNNING,
            claim_token=token,
            attempts=F("attempts") + 1,
            started_at=now,
            last_progress_at=now,
            progress_done=0,
            worker=worker[:255],
            error="",
        )
        if not claimed:
            return None
        run = EvaluationRun.objects.select_related("version__model", "suite").get(pk=run_id)
        audit_record(
            actor=None,
            action="evaluation.started",
            obj=run,
            after={"worker": run.worker, "attempt": run.attempts},
        )
    return token


class _Heartbeat:
    """Progress callback: records progress and the heartbeat, at most every few seconds, and
    stops the evaluation when the claim was lost."""

    def __init__(self, run_id: int, token: uuid.UUID) -> None:
        self.run_id, self.token = run_id, token
        self.interval = min(5.0, settings.PEDIGREE_EVALUATION_STALE_SECONDS / 4)
        self.last = 0.0

    def beat(self, done: int = 0, total: int = 0) -> None:
        updated = EvaluationRun.objects.filter(
            pk=self.run_id, status=RunStatus.RUNNING, claim_token=self.token
        ).update(progress_done=done, progress_total=total, last_progress_at=timezone.now())
        if not updated:
            raise _ClaimLost
        self.last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if done >= total or time.monotonic() - self.last >= self.interval:
            self.beat(min(done, total), total)


def _fail(run_id: int, token: uuid.UUID, message: str) -> bool:
    with transaction.atomic():
        failed = EvaluationRun.objects.filter(
            pk=run_id, status=RunStatus.RUNNING, claim_token=token
        ).update(status=RunStatus.FAILED, finished_at=timezone.now(), error=message[:10_000])
        if failed:
            run = EvaluationRun.objects.select_related("version__model", "suite").get(pk=run_id)
            audit_record(
                actor=None,
                action="evaluation.failed",
                obj=run,
                after={
                    "version": str(run.version),
                    "suite": run.suite.name,
                    "artefact_digest": run.artefact_digest,
                    "error": run.error,
                    "worker": run.worker,
                    "attempt": run.attempts,
                },
            )
    return bool(failed)


def _release(run_id: int, token: uuid.UUID) -> None:
    """Give a claimed run back to the queue after an infrastructure error (best effort)."""
    try:
        EvaluationRun.objects.filter(
            pk=run_id, status=RunStatus.RUNNING, claim_token=token
        ).update(status=RunStatus.QUEUED, claim_token=None)
    except (OperationalError, InterfaceError):
        logger.warning("could not release evaluation #%s; the sweep will re-queue it", run_id)


@transaction.atomic
def _succeed(run: EvaluationRun, token: uuid.UUID, outcome: Any) -> bool:
    updated = EvaluationRun.objects.filter(
        pk=run.pk, status=RunStatus.RUNNING, claim_token=token
    ).update(
        status=RunStatus.SUCCEEDED,
        finished_at=timezone.now(),
        progress_done=outcome.samples,
        progress_total=outcome.samples,
        device=outcome.device,
        torch_version=outcome.torch_version,
        cuda_version=outcome.cuda_version or "",
        transformers_version=outcome.transformers_version,
        peft_version=outcome.peft_version,
        samples=outcome.samples,
        duration_s=outcome.duration_s,
        inference_s=outcome.inference_s,
        samples_per_second=outcome.samples_per_second,
    )
    if not updated:
        return False
    run = EvaluationRun.objects.select_related("suite", "version__model").get(pk=run.pk)
    metrics = outcome.metrics
    result = EvaluationResult(
        run=run,
        labels=metrics["labels"],
        positive_label=metrics["positive_label"] or "",
        min_group_size=metrics["min_group_size"],
        overall=metrics["overall"],
        groups=metrics["groups"],
        fairness=metrics["fairness"],
    )
    run.result = result
    comparisons = parent_comparisons(
        run.version, {run.suite_id: run}, comparable_parent_edges(run.version)
    )[run.suite_id]
    result.comparison = [comparison.to_dict() for comparison in comparisons]
    result.save(force_insert=True)
    audit_record(
        actor=None,
        action="evaluation.succeeded",
        obj=run,
        after={
            "version": str(run.version),
            "suite": run.suite.name,
            "artefact_digest": run.artefact_digest,
            "dataset_sha256": run.dataset_sha256,
            "base_digest": run.base_digest or None,
            "device": run.device,
            "worker": run.worker,
            "attempt": run.attempts,
            "overall": result.overall,
        },
    )
    return True


def run_execute(*, run_id: int, worker: str = "") -> str:
    """Claim the run, verify the exact bytes, evaluate, and record the outcome once.

    Returns what happened: "succeeded", "failed", "skipped" (not claimable: finished,
    cancelled or being run by a live worker) or "abandoned" (the claim was lost meanwhile).
    Database outages propagate (the task retries); everything else fails the run.
    """
    # The heavy imports (torch, transformers) happen before the claim, so a slow start does
    # not count against the heartbeat.
    from evaluators.engine import (
        EvaluationError,
        plugins,  # noqa: F401
        run_evaluation,
    )

    token = _claim(run_id, worker or worker_name())
    if token is None:
        return "skipped"
    heartbeat = _Heartbeat(run_id, token)
    # Local copies of files from a remote artefact storage, removed once the model has run.
    staged = ExitStack()
    try:
        run = EvaluationRun.objects.select_related(
            "suite__dataset_version", "version__model", "base_version__model"
        ).get(pk=run_id)
        suite = run.suite
        artefact_dir = staged.enter_context(
            verified_artefact_dir(run.version, expected_digest=run.artefact_digest)
        )
        base_dir = (
            staged.enter_context(
                verified_artefact_dir(run.base_version, expected_digest=run.base_digest)
            )
            if run.base_version
            else None
        )
        dataset_path = verified_dataset_file(
            suite.dataset_version, expected_sha256=run.dataset_sha256
        )
        heartbeat.beat()
        outcome = run_evaluation(
            kind=run.evaluator,
            artefact_dir=artefact_dir,
            base_dir=base_dir,
            dataset_path=dataset_path,
            input_column=suite.input_column or None,
            feature_columns=list(suite.feature_columns) or None,
            label_column=suite.label_column,
            sensitive_columns=list(suite.sensitive_columns),
            metrics=list(suite.metrics),
            batch_size=suite.batch_size,
            seed=suite.seed,
            min_group_size=suite.min_group_size,
            positive_label=suite.positive_label or None,
            device=run.device_requested,
            progress=heartbeat,
        )
        if outcome.dataset_sha256 != run.dataset_sha256:
            raise SourceError(
                f"The dataset file changed while it was being read (it now hashes to "
                f"{outcome.dataset_sha256[:12]}…); evaluate again."
            )
    except _ClaimLost:
        return "abandoned"
    except (OperationalError, InterfaceError):
        _release(run_id, token)
        raise
    except (EvaluationError, SourceError) as error:
        return "failed" if _fail(run_id, token, str(error)) else "abandoned"
    except SoftTimeLimitExceeded:
        message = (
            f"The evaluation took longer than {settings.PEDIGREE_EVALUATION_TIME_LIMIT} s "
            "(PEDIGREE_EVALUATION_TIME_LIMIT); use a GPU worker or a smaller dataset."
        )
        return "failed" if _fail(run_id, token, message) else "abandoned"
    except Exception as error:  # a bug or a device error must not leave the run running
        logger.exception("evaluation #%s crashed", run_id)
        message = (
            f"The evaluation crashed on {worker or worker_name()}: "
            f"{type(error).__name__}: {error}"
        )
        return "failed" if _fail(run_id, token, message) else "abandoned"
    finally:
        staged.close()
    try:
        return "succeeded" if _succeed(run, token, outcome) else "abandoned"
    except IntegrityError:
        # The result row already exists: another claim recorded this run first.
        return "abandoned"


# --- The sweep ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepReport:
    requeued: list[int]
    failed: list[int]


def runs_sweep(
    *, stale_seconds: int | None = None, max_attempts: int | None = None
) -> SweepReport:
    """Re-queue running runs whose heartbeat is older than the stale timeout (their worker
    vanished), or fail them once they have been tried `max_attempts` times."""
    stale_seconds = stale_seconds or settings.PEDIGREE_EVALUATION_STALE_SECONDS
    max_attempts = max_attempts or settings.PEDIGREE_EVALUATION_MAX_ATTEMPTS
    cutoff = timezone.now() - timedelta(seconds=stale_seconds)
    stale = list(
        EvaluationRun.objects.filter(status=RunStatus.RUNNING, last_progress_at__lt=cutoff)
        .order_by("last_progress_at")
        .values_list("pk", "attempts", "claim_token")[:MAX_SWEEP_BATCH]
    )
    requeued, failed = [], []
    for run_id, attempts, token in stale:
        with transaction.atomic():
            still_stale = EvaluationRun.objects.filter(
                pk=run_id,
                status=RunStatus.RUNNING,
                claim_token=token,
                last_progress_at__lt=cutoff,
            )
            if attempts >= max_attempts:
                message = (
                    f"The worker running this evaluation stopped responding (no heartbeat for "
                    f"{stale_seconds} s) on each of {attempts} attempts; giving up. Check the "
                    "worker logs (out of memory?), then request the evaluation again."
                )
                if still_stale.update(
                    status=RunStatus.FAILED, finished_at=timezone.now(), error=message
                ):
                    run = EvaluationRun.objects.select_related("version__model", "suite").get(
                        pk=run_id
                    )
                    audit_record(
                        actor=None,
                        action="evaluation.failed",
                        obj=run,
                        after={
                            "version": str(run.version),
                            "suite": run.suite.name,
                            "artefact_digest": run.artefact_digest,
                            "error": message,
                            "attempt": attempts,
                        },
                    )
                    failed.append(run_id)
            elif still_stale.update(status=RunStatus.QUEUED, claim_token=None):
                run = EvaluationRun.objects.select_related("version__model", "suite").get(
                    pk=run_id
                )
                audit_record(
                    actor=None,
                    action="evaluation.requeued",
                    obj=run,
                    after={"previous_worker": run.worker, "attempts": attempts},
                )
                _enqueue(run)
                requeued.append(run_id)
    return SweepReport(requeued=requeued, failed=failed)
