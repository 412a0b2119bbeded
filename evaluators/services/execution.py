"""Executing a run on a worker: claim, heartbeat, then record the outcome exactly once.

Each step is a conditional UPDATE keyed by the claim token, so a redelivered task, a worker
that lost its claim or a concurrent cancel can never record a second result.
"""

import logging
import os
import socket
import time
import uuid
from contextlib import ExitStack
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.db.models import F, Q
from django.utils import timezone

from evaluators.engine import EvaluationOutcome
from evaluators.models import EvaluationResult, EvaluationRun, RunStatus
from evaluators.selectors import comparable_parent_edges, parent_comparisons
from evaluators.sources import SourceError, verified_artefact_dir, verified_dataset_file
from registry.audit import audit_record
from registry.services import compliance_recheck_after_commit

logger = logging.getLogger(__name__)


class _ClaimLost(Exception):
    """The run was cancelled or taken over while this worker ran it."""


def _stale_before() -> datetime:
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


def run_failure_audit(run_id: int) -> None:
    """Audit a run just marked failed (by its worker or by the sweep), from the stored row."""
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


def _fail(run_id: int, token: uuid.UUID, message: str) -> bool:
    with transaction.atomic():
        failed = EvaluationRun.objects.filter(
            pk=run_id, status=RunStatus.RUNNING, claim_token=token
        ).update(status=RunStatus.FAILED, finished_at=timezone.now(), error=message[:10_000])
        if failed:
            run_failure_audit(run_id)
    return bool(failed)


def _release(run_id: int, token: uuid.UUID) -> None:
    """Give a claimed run back to the queue after an infrastructure error (best effort)."""
    try:
        EvaluationRun.objects.filter(pk=run_id, status=RunStatus.RUNNING, claim_token=token).update(
            status=RunStatus.QUEUED, claim_token=None, queued_at=timezone.now()
        )
    except (OperationalError, InterfaceError):
        logger.warning("could not release evaluation #%s; the sweep will re-queue it", run_id)


@transaction.atomic
def _succeed(run: EvaluationRun, token: uuid.UUID, outcome: EvaluationOutcome) -> bool:
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
    compliance_recheck_after_commit([run.version_id])
    return True


def run_execute(*, run_id: int, worker: str = "") -> str:
    """Claim the run, verify the exact bytes, evaluate, and record the outcome once.

    Returns what happened: "succeeded", "failed", "skipped" (not claimable: finished or
    cancelled), "busy" (running with a fresh heartbeat: a live worker runs it, or a dead one
    whose heartbeat is not stale yet) or "abandoned" (the claim was lost meanwhile).
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
        alive = EvaluationRun.objects.filter(
            pk=run_id, status=RunStatus.RUNNING, last_progress_at__gte=_stale_before()
        ).exists()
        return "busy" if alive else "skipped"
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
            # Suites defined before the floor was raised are held to it too.
            min_group_size=max(suite.min_group_size, settings.PEDIGREE_MIN_GROUP_SIZE_FLOOR),
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
            f"The evaluation crashed on {worker or worker_name()}: {type(error).__name__}: {error}"
        )
        return "failed" if _fail(run_id, token, message) else "abandoned"
    finally:
        staged.close()
    try:
        return "succeeded" if _succeed(run, token, outcome) else "abandoned"
    except IntegrityError:
        # The result row already exists: another claim recorded this run first.
        return "abandoned"
