"""Real Celery worker processes on a real broker (CELERY_BROKER_URL, Redis in CI) sharing the
test database (PostgreSQL): an evaluation end to end, and a worker killed with SIGKILL in the
middle of one, after which a second worker completes it exactly once.

Skipped when no broker is configured or the database cannot be shared with another process.
"""

import pytest

from evaluators.models import EvaluationResult, EvaluationRun, RunStatus
from evaluators.services import run_request
from registry.models import AuditEntry
from tests.evaluators.realworkers import wait_for

pytestmark = [pytest.mark.real_worker, pytest.mark.django_db(transaction=True)]


def test_a_worker_runs_an_evaluation_end_to_end(workers, models, make_suite, engineer):
    workers.start("w1")
    suite = make_suite(models=["acme/biased"])

    run, _ = run_request(actor=engineer, version=models["biased"], suite=suite)

    run = wait_for(
        lambda: EvaluationRun.objects.filter(
            pk=run.pk, status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED]
        ).first(),
        timeout=120,
        what="the evaluation to finish",
        workers=workers,
    )
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.worker.startswith("w1-")
    assert run.device == "cpu"
    assert run.result.fairness["region"]["accuracy_gap"] == 0.5
    succeeded = AuditEntry.objects.filter(action="evaluation.succeeded", object_id=str(run.pk))
    assert succeeded.count() == 1


def test_a_killed_worker_s_evaluation_completes_exactly_once(workers, models, make_suite, engineer):
    first = workers.start("doomed", batch_delay=0.5)
    suite = make_suite(models=["acme/biased"], batch_size=4)  # 11 batches, 0.5 s each

    run, _ = run_request(actor=engineer, version=models["biased"], suite=suite)
    wait_for(
        lambda: EvaluationRun.objects.filter(
            pk=run.pk, status=RunStatus.RUNNING, progress_done__gt=0
        ).exists(),
        timeout=120,
        what="the first worker to start the evaluation",
        workers=workers,
    )
    workers.kill(first)

    run.refresh_from_db()
    assert (run.status, run.attempts) == (RunStatus.RUNNING, 1)
    assert run.progress_done < 43
    workers.start("rescuer")
    run = wait_for(
        lambda: EvaluationRun.objects.filter(
            pk=run.pk, status__in=[RunStatus.SUCCEEDED, RunStatus.FAILED]
        ).first(),
        timeout=120,
        what="the redelivered evaluation to finish",
        workers=workers,
    )

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.attempts == 2
    assert run.worker.startswith("rescuer-")
    assert EvaluationResult.objects.filter(run=run).count() == 1
    actions = list(
        AuditEntry.objects.filter(object_id=str(run.pk), object_type="evaluators.evaluationrun")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == [
        "evaluation.requested",
        "evaluation.started",
        "evaluation.started",
        "evaluation.succeeded",
    ]
