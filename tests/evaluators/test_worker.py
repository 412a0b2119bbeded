"""Real Celery worker processes on a real broker (CELERY_BROKER_URL, Redis in CI) sharing the
test database (PostgreSQL): an evaluation end to end, and a worker killed with SIGKILL in the
middle of one, after which a second worker completes it exactly once.

Skipped when no broker is configured or the database cannot be shared with another process.
"""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection

from config.celery import app
from evaluators.models import EvaluationResult, EvaluationRun, RunStatus
from evaluators.services import run_request
from registry.models import AuditEntry

pytestmark = [pytest.mark.real_worker, pytest.mark.django_db(transaction=True)]

REPO = Path(__file__).resolve().parents[2]
QUEUE = "cpu"


@pytest.fixture
def broker():
    url = os.environ.get("CELERY_BROKER_URL")
    if not url:
        pytest.skip("needs a broker: set CELERY_BROKER_URL (Redis)")
    if connection.vendor != "postgresql":
        pytest.skip("needs a database a worker process can share: set DATABASE_URL (PostgreSQL)")
    # Leftovers of an interrupted earlier run would be delivered to these workers.
    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(QUEUE)
        conn.default_channel.client.delete("unacked", "unacked_index")
    return url


def _database_url() -> str:
    """The test database (pytest-django's `test_<name>`), for the worker processes."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        credentials += ":" + quote(db["PASSWORD"], safe="")
    return (
        f"postgres://{credentials}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/"
        f"{quote(db['NAME'], safe='')}"
    )


class Workers:
    """Celery workers started as subprocesses, each in its own process group so SIGKILL takes
    the pool's children with it, as when a host dies."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env, self.logs = env, logs
        self.processes: list[subprocess.Popen] = []

    def start(self, name: str, *, batch_delay: float = 0.0) -> subprocess.Popen:
        log = (self.logs / f"{name}.log").open("w")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "-Q",
                QUEUE,
                "--concurrency=1",
                "--pool=prefork",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--include=tests.evaluators.slow_worker",
                "-n",
                f"{name}-{uuid.uuid4().hex[:6]}@%h",
            ],
            cwd=REPO,
            env={**self.env, "PEDIGREE_TEST_BATCH_DELAY": str(batch_delay)},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text()[-3000:]}" for path in sorted(self.logs.glob("*"))
        )


@pytest.fixture
def workers(broker, settings, roots, tmp_path):
    logs = tmp_path / "worker-logs"
    logs.mkdir()
    env = {
        **os.environ,
        "DATABASE_URL": _database_url(),
        "CELERY_BROKER_URL": broker,
        "PEDIGREE_DATA_DIR": str(tmp_path / "worker-data"),
        "PEDIGREE_ARTEFACT_ROOTS": os.pathsep.join(str(root) for root in settings.ARTEFACT_ROOTS),
        # A killed worker's task comes back after 5 s; its run counts as abandoned after 2 s.
        "PEDIGREE_BROKER_VISIBILITY_TIMEOUT": "5",
        "PEDIGREE_EVALUATION_STALE_SECONDS": "2",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    started = Workers(env, logs)
    yield started
    started.stop_all()


def wait_for(predicate, *, timeout: float, what: str, workers: Workers):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}\n{workers.log_tail()}")


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


def test_a_killed_worker_s_evaluation_completes_exactly_once(
    workers, models, make_suite, engineer
):
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
