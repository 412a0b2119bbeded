"""Real Celery worker processes on a real broker (CELERY_BROKER_URL, Redis in CI) sharing the
test database (PostgreSQL), for the real-worker tests: started as subprocesses, each in its own
process group so SIGKILL takes the pool's children with it, as when a host dies."""

import os
import shlex
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
        for queue in ("cpu", "gpu", "events"):
            conn.default_channel.queue_purge(queue)
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

    def start(
        self, name: str, *, batch_delay: float = 0.0, make_worker: bool = False
    ) -> subprocess.Popen:
        """A worker on the cpu queue; with `make_worker`, the command `make worker` runs (every
        queue, beat inside), given a node name and the slow evaluator the tests need."""
        command = (
            make_worker_command()
            if make_worker
            else [
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
            ]
        )
        log = (self.logs / f"{name}.log").open("w")
        process = subprocess.Popen(
            [
                *command,
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
def worker_env(broker, settings, roots, tmp_path) -> dict[str, str]:
    """The environment of the workers: the test database, the broker, the artefact roots."""
    return {
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
        # The tests' webhook receivers listen on loopback, which egress refuses by default.
        "PEDIGREE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
    }


@pytest.fixture
def workers(worker_env, tmp_path):
    logs = tmp_path / "worker-logs"
    logs.mkdir()
    started = Workers(worker_env, logs)
    yield started
    started.stop_all()


def make_worker_command() -> list[str]:
    """The recipe of the Makefile's `worker` target, run with this interpreter's Celery."""
    lines = (REPO / "Makefile").read_text().splitlines()
    recipe = lines[lines.index("worker: install") + 1].strip()
    command = shlex.split(recipe)
    assert command[0] == "$(BIN)/celery", recipe
    return [sys.executable, "-m", "celery", *command[1:]]


def wait_for(predicate, *, timeout: float, what: str, workers: Workers):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}\n{workers.log_tail()}")
