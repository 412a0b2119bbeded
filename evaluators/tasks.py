"""Thin Celery tasks of the evaluators: take an id, call one service.

`evaluate_run` is sent to the `gpu` or `cpu` queue by `run_request` through the outbox
(`registry.outbox`), after the commit. With `acks_late` and `reject_on_worker_lost` a worker
that dies mid-run leaves the message to be redelivered; the claim in `run_execute` makes the
redelivery (or any duplicate) harmless.
"""

import logging
import threading

from celery import Task, shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError, connections

from evaluators import services

logger = logging.getLogger(__name__)

MAX_RETRIES = 3


class EvaluationTask(Task):
    """With no broker (tasks run in-process) an evaluation runs in a thread of this process, so
    that the request that asked for it answers at once; `PEDIGREE_EVALUATION_INLINE` runs it
    here. The thread is not a daemon: a process asked to exit (a reloading development server,
    a management command) finishes the evaluations it started first, rather than leave them
    running with no one to run them."""

    def apply_async(self, args=None, kwargs=None, **options):
        if not self.app.conf.task_always_eager or settings.PEDIGREE_EVALUATION_INLINE:
            return super().apply_async(args, kwargs, **options)
        run_id = (args or [None])[0]
        threading.Thread(
            target=self._in_background,
            args=(args, kwargs, options),
            name=f"pedigree-evaluation-{run_id}",
        ).start()
        return None

    def _in_background(self, args, kwargs, options) -> None:
        try:
            super().apply_async(args, kwargs, **options)
        except Exception:
            # `run_execute` records every failure of the evaluation itself on the run; what is
            # left (the database unreachable) can only be logged from a thread.
            logger.exception("evaluation %s could not run in the background", args)
        finally:
            connections.close_all()


@shared_task(
    base=EvaluationTask,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_RETRIES,
    soft_time_limit=settings.PEDIGREE_EVALUATION_TIME_LIMIT,
    time_limit=settings.PEDIGREE_EVALUATION_TIME_LIMIT + 60,
)
def evaluate_run(self, run_id: int) -> str:
    """Run one evaluation; a database outage is retried with backoff, a bounded number of times."""
    try:
        outcome = services.run_execute(
            run_id=run_id, worker=services.worker_name(self.request.hostname)
        )
    except (OperationalError, InterfaceError) as error:
        if self.request.is_eager:
            raise  # in-process (no broker) there is no worker to retry later
        raise self.retry(exc=error, countdown=min(300, 15 * 2**self.request.retries)) from None
    if outcome == "busy" and not self.request.is_eager:
        # Running with a fresh heartbeat: another worker runs it, or this task's previous
        # worker was killed and the broker redelivered at once. Look again when that heartbeat
        # could have gone stale, and take the run over then; a live run finishes first.
        stale = settings.PEDIGREE_EVALUATION_STALE_SECONDS
        raise self.retry(countdown=max(1, stale // 4), max_retries=None)
    return outcome


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def sweep_evaluation_runs() -> dict[str, list[int]]:
    """Periodic (celery beat): re-queue or fail runs whose worker stopped sending heartbeats, and
    publish again the queued runs whose message the broker lost."""
    report = services.runs_sweep()
    return {
        "requeued": report.requeued,
        "republished": report.republished,
        "failed": report.failed,
    }
