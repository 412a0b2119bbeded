"""Thin Celery tasks of the evaluators: take an id, call one service.

`evaluate_run` is sent to the `gpu` or `cpu` queue by `run_request` (apply_async(queue=...)),
after the commit. With `acks_late` and `reject_on_worker_lost` a worker that dies mid-run
leaves the message to be redelivered; the claim in `run_execute` makes the redelivery (or any
duplicate) harmless.
"""

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from evaluators import services

MAX_RETRIES = 3


@shared_task(
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
        return services.run_execute(
            run_id=run_id, worker=services.worker_name(self.request.hostname)
        )
    except (OperationalError, InterfaceError) as error:
        if self.request.is_eager:
            raise  # in-process (no broker) there is no worker to retry later
        raise self.retry(exc=error, countdown=min(300, 15 * 2**self.request.retries)) from None


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def sweep_evaluation_runs() -> dict[str, list[int]]:
    """Periodic (celery beat): re-queue or fail runs whose worker stopped sending heartbeats."""
    report = services.runs_sweep()
    return {"requeued": report.requeued, "failed": report.failed}
