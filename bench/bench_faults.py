"""Availability under faults: the registration error rate of the embedded default (SQLite) with
8 concurrent clients, and the time a run or a delivery takes to finish after its worker is
killed with SIGKILL.

1. A throwaway Pedigree on a SQLite file (migrated, one user and token), served by gunicorn with
   2 worker processes of 4 threads, as several web processes share the embedded database; 8
   clients register CLIENTS_ROUNDS versions each at once. Target: 0 errors.
2. With PostgreSQL and a broker (DATABASE_URL and CELERY_BROKER_URL set), the SIGKILL fault
   tests of `tests/evaluators/test_faults.py` run against real `make worker` processes (stale
   time 3 s, sweep every 2 s) and each recovery is timed from the kill to the final state: a
   pool process and a whole worker killed mid-evaluation and mid-delivery. The time includes
   starting the next worker, loading the model and evaluating again. Target: under the stale
   time + one sweep period + the work itself.

    .venv/bin/python bench/bench_faults.py
"""

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.faults.server import Server, register_concurrently  # noqa: E402

CLIENTS = 8
CLIENTS_ROUNDS = 25

SETUP = """
import django; django.setup()
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from registry.models import Team
user = get_user_model().objects.create_user("bench")
Team.objects.create(slug="bench", name="Bench").members.add(user)
print(Token.objects.create(user=user).key)
"""


def sqlite_writers() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CELERY_BROKER_URL")
        }
        env.update(
            PEDIGREE_DATA_DIR=tmp, DJANGO_SETTINGS_MODULE="config.settings", LOG_LEVEL="WARNING"
        )
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        token = subprocess.run(
            [sys.executable, "-c", SETUP],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()[-1]
        server = Server(Path(tmp), workers=2, threads=4)
        try:
            server.wait_ready()
            started = time.perf_counter()
            statuses = register_concurrently(
                server.url,
                token,
                clients=CLIENTS,
                per_client=CLIENTS_ROUNDS,
                team="bench",
                prefix="b",
            )
            wall = time.perf_counter() - started
        finally:
            server.stop()
    total = sum(statuses.values())
    errors = total - statuses.get(201, 0)
    print(
        f"sqlite, {CLIENTS} concurrent clients through 2 gunicorn processes: {total} "
        f"registrations, {errors} errors ({100 * errors / total:.1f} %; target 0), "
        f"{total / wall:.1f} registrations/s, statuses {dict(statuses)}"
    )


def recovery() -> None:
    if not (os.environ.get("DATABASE_URL") and os.environ.get("CELERY_BROKER_URL")):
        print(
            "recovery after a worker kill: set DATABASE_URL (PostgreSQL) and "
            "CELERY_BROKER_URL to measure it"
        )
        return
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/evaluators/test_faults.py",
            "-k",
            "killed or mid_post",
            "-s",
            "-q",
            "-p",
            "no:randomly",
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": "client"},
        capture_output=True,
        text=True,
        check=False,
    )
    times: dict[str, list[float]] = {}
    for what, seconds in re.findall(
        r"^(.*): recovered in ([\d.]+) s$", result.stdout, re.MULTILINE
    ):
        times.setdefault(what, []).append(float(seconds))
    for what, values in times.items():
        print(
            f"{what}: recovered in {statistics.median(values):.1f} s "
            f"(median of {len(values)}; max {max(values):.1f} s)"
        )
    if result.returncode:
        print(f"(the fault tests failed: {result.stdout[-2000:]})")


if __name__ == "__main__":
    sqlite_writers()
    recovery()
