"""CPU time per registration and per read, in-process: the measuring stick for the server's work.

Wall-clock throughput (`bench_registration.py`) needs a quiet machine; CPU time does not. This
runs the bench's registration (`POST /api/v1/registrations/` with a new model, a pinned parent,
a licence and a training run with hyperparameters and a dataset) N times and
`GET /api/v1/versions/{id}/` M times through the whole Django stack (middleware, token
authentication, throttles, DRF, JSON, the audit seal after each commit), set up as
`config/wsgi.py` serves it (DEBUG off, URL conf loaded, start-up objects frozen out of the
garbage collector), and prints:

* CPU ms per registration and per read (`time.process_time()`: this process only, so on
  SQLite it includes the database engine's work and on PostgreSQL it leaves the server's out),
  with wall ms beside them for reference;
* the SQL queries one registration and one read run;
* with `--profile`, the top entries of a cProfile of a further round of each.

It works in a database of its own, created and dropped by Django's test-database machinery:
a SQLite file in a temporary folder by default, or `test_<name>` beside the PostgreSQL
database `DATABASE_URL` names.

    python bench/bench_cpu.py [--registrations 200] [--reads 500] [--profile [TOP]]
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/pedigree_bench python bench/bench_cpu.py
"""

import argparse
import cProfile
import importlib
import io
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
_FOLDER = tempfile.mkdtemp(prefix="pedigree-bench-cpu-")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("PEDIGREE_DATA_DIR", _FOLDER)
os.environ.setdefault("DATABASE_URL", f"sqlite:///{_FOLDER}/pedigree.sqlite3")
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.pop("CELERY_BROKER_URL", None)

WARM_UP = 10


def set_up():
    """The bench's catalogue: a team and its engineer, a parent version, a dataset version."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from registry import services
    from registry.models import Team

    user = get_user_model().objects.create_user("bench")
    team = Team.objects.create(slug="bench", name="Bench")
    team.members.add(user)
    base = services.model_create(actor=user, name="bench/base", kind="upstream", team=team)
    parent = services.version_create(
        actor=user,
        model=base,
        version="v1",
        artefact_digest="a" * 64,
        licence_declared="Apache-2.0",
    )
    dataset = services.dataset_create(actor=user, name="bench/tickets", team=team)
    services.dataset_version_create(
        actor=user,
        dataset=dataset,
        version="v1",
        sha256="b" * 64,
        size_bytes=1024,
        licence_declared="CC-BY-4.0",
    )
    return Token.objects.create(user=user).key, str(parent)


def registration_body(n: int, parent: str) -> bytes:
    return json.dumps(
        {
            "model": f"bench/intent-{n}",
            "version": "v1",
            "create_model": {"team": "bench", "task": "text-classification"},
            "artefact_digest": f"{n:064x}",
            "licence_declared": "Apache-2.0",
            "parents": [{"version": parent, "relation": "finetune"}],
            "training_run": {
                "method": "full_finetune",
                "hyperparameters": {"learning_rate": 2e-5, "epochs": 3, "batch_size": 32},
                "datasets": [{"dataset_version": "bench/tickets@v1", "role": "train"}],
            },
        }
    ).encode()


class Driver:
    def __init__(self, client, parent: str) -> None:
        self.client = client
        self.parent = parent
        self.counter = iter(range(10**9))
        self.versions: list[int] = []

    def register(self) -> None:
        body = registration_body(next(self.counter), self.parent)
        response = self.client.post("/api/v1/registrations/", body, content_type="application/json")
        if response.status_code != 201:
            raise RuntimeError(f"registration answered {response.status_code}: {response.content}")
        self.versions.append(response.json()["version"]["id"])

    def read(self, index: int) -> None:
        version = self.versions[index % len(self.versions)]
        response = self.client.get(f"/api/v1/versions/{version}/")
        if response.status_code != 200:
            raise RuntimeError(f"read answered {response.status_code}: {response.content}")


def timed(action, count: int) -> tuple[float, float]:
    """CPU and wall milliseconds per call of `action(i)`, over `count` calls."""
    cpu, wall = time.process_time(), time.perf_counter()
    for index in range(count):
        action(index)
    return (
        (time.process_time() - cpu) * 1000 / count,
        (time.perf_counter() - wall) * 1000 / count,
    )


def queries(connection, action, show: bool) -> int:
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        action()
    if show:
        for query in captured.captured_queries:
            print(f"    {query['sql'][:160]}")
    return len(captured.captured_queries)


def profiled(action, count: int) -> pstats.Stats:
    profile = cProfile.Profile()
    profile.enable()
    for index in range(count):
        action(index)
    profile.disable()
    return pstats.Stats(profile, stream=io.StringIO())


def top_entries(stats: pstats.Stats, top: int) -> str:
    stats.stream = out = io.StringIO()  # type: ignore[attr-defined]
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--registrations", type=int, default=200)
    parser.add_argument("--reads", type=int, default=500)
    parser.add_argument("--profile", type=int, nargs="?", const=25, default=0, metavar="TOP")
    parser.add_argument("--sql", action="store_true", help="print the queries of each")
    parser.add_argument("--dump", metavar="PREFIX", help="save the profiles as PREFIX-*.prof")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]

    importlib.import_module("config.wsgi")  # Django set up as the served process is
    from django.conf import settings
    from django.db import connection
    from rest_framework.test import APIClient

    original_name = settings.DATABASES["default"]["NAME"]
    if connection.vendor == "sqlite":
        settings.DATABASES["default"].setdefault("TEST", {})["NAME"] = f"{_FOLDER}/test.sqlite3"
    try:
        connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    except Exception as error:  # a benchmark never fails the build
        print(f"bench_cpu skipped: cannot create its database ({error})")
        return 0
    try:
        token, parent = set_up()
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
        driver = Driver(client, parent)
        for index in range(WARM_UP):
            driver.register()
            driver.read(index)
        write_sql = queries(connection, driver.register, args.sql)
        read_sql = queries(connection, lambda: driver.read(-1), args.sql)
        write_cpu, write_wall = timed(lambda _: driver.register(), args.registrations)
        read_cpu, read_wall = timed(driver.read, args.reads)
        # Python function calls per request: unlike time, the same on a busy machine.
        write_count, read_count = max(args.registrations // 4, 1), max(args.reads // 4, 1)
        write_stats = profiled(lambda _: driver.register(), write_count)
        read_stats = profiled(driver.read, read_count)
        write_calls = write_stats.total_calls / write_count  # type: ignore[attr-defined]
        read_calls = read_stats.total_calls / read_count  # type: ignore[attr-defined]
        print(
            f"{connection.vendor}, {args.registrations} registrations, {args.reads} reads "
            "(CPU: this process; wall for reference; calls: Python function calls, profiled)"
        )
        rows = [
            ("", "CPU ms", "wall ms", "SQL", "calls"),
            (
                "registration",
                f"{write_cpu:.2f}",
                f"{write_wall:.2f}",
                write_sql,
                f"{write_calls:.0f}",
            ),
            ("read", f"{read_cpu:.2f}", f"{read_wall:.2f}", read_sql, f"{read_calls:.0f}"),
        ]
        for name, *figures in rows:
            print(f"{name:14}" + "".join(f"{figure:>9}" for figure in figures))
        if args.dump:
            write_stats.dump_stats(f"{args.dump}-registration.prof")
            read_stats.dump_stats(f"{args.dump}-read.prof")
        if args.profile:
            print(f"\n--- profile of {write_count} registrations ---")
            print(top_entries(write_stats, args.profile))
            print(f"--- profile of {read_count} reads ---")
            print(top_entries(read_stats, args.profile))
    finally:
        connection.creation.destroy_test_db(original_name, verbosity=0)
        shutil.rmtree(_FOLDER, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
