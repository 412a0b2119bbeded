"""Registration and read-back, Pedigree against MLflow's model registry, side by side.

Both servers run on loopback with the same number of worker processes (2, one per core of the
machine the issue measured on): MLflow's tracking server (`mlflow server --workers 2`, the
optional `bench` extra installs it) and Pedigree under gunicorn (`-w 2`, `config.wsgi`, DEBUG
off) with its default `sync` workers, one request at a time each. `--threads N` runs gunicorn's
`gthread` workers with N threads each instead: they keep each client connection alive on the
worker that accepted it, so the client's 4 connections split unevenly (3 and 1 in a measured run,
one worker doing five times the other's work) and the busier worker's threads share one core.
One client with 4 threads drives both, alternating batches between them so that neither gets a
quieter machine. One registration is:

* MLflow: create a registered model, create its version 1, then get that version;
* Pedigree: `POST /api/v1/registrations/` with a new model, a pinned parent, a licence and a
  training run with hyperparameters and a dataset, then `GET /api/v1/versions/{id}/`.

Each runs on SQLite (a file per server) and on PostgreSQL (a database per server, dropped and
created afresh; skipped when PostgreSQL cannot be reached). Printed: registrations/s (each
with its read), p50/p99 of the writes (MLflow's two calls together) and of the reads, errors,
and Pedigree's ratios to MLflow. Targets: at least 2x MLflow's registrations/s, write p99 no more
than MLflow's, read p50 no more than MLflow's, 0 errors.

    python bench/bench_registration.py [--quick] [--requests N] [--backends sqlite,postgresql]
        [--threads 2]

`BENCH_DATABASE_URL` names the PostgreSQL database Pedigree gets (MLflow's is the same name
with `_mlflow`); default postgres://postgres@127.0.0.1:5432/pedigree_bench.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
WORKERS = 2
# Threads per Pedigree worker: 1 runs gunicorn's sync workers; more, gthread workers.
SERVER_THREADS = 1
THREADS = 4
BATCH = 20
RATIO_TARGET = 2.0
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/pedigree_bench"

SETUP = """
import json
from rest_framework.authtoken.models import Token
from django.contrib.auth import get_user_model
from registry import services
from registry.models import Team

user = get_user_model().objects.create_user("bench", password="bench-password-123")
team = Team.objects.create(slug="bench", name="Bench")
team.members.add(user)
base = services.model_create(actor=user, name="bench/base", kind="upstream", team=team)
parent = services.version_create(
    actor=user, model=base, version="v1", artefact_digest="a" * 64, licence_declared="Apache-2.0"
)
dataset = services.dataset_create(actor=user, name="bench/tickets", team=team)
services.dataset_version_create(
    actor=user, dataset=dataset, version="v1", sha256="b" * 64, size_bytes=1024,
    licence_declared="CC-BY-4.0",
)
print(json.dumps({"token": Token.objects.create(user=user).key, "parent": str(parent)}))
"""


@dataclass
class Figures:
    writes: list[float] = field(default_factory=list)
    reads: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    done: int = 0

    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0


def free_port(start: int) -> int:
    for port in range(start, start + 100):
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) != 0:
                return port
    raise RuntimeError(f"no free port from {start}")


@contextmanager
def server(command: list[str], env: dict[str, str], ready: Callable[[], bool], log: Path):
    """Run `command` in its own process group until the block ends; wait until `ready()`."""
    with log.open("w") as out:
        process = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 120
        while not ready():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{command[0]} did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def answers(url: str, **kwargs) -> bool:
    try:
        return requests.get(url, timeout=2, **kwargs).status_code == 200
    except requests.RequestException:
        return False


def recreate_postgres(url: str) -> bool:
    """Drop and create the database of `url`; False when PostgreSQL cannot be reached."""
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        return False
    return True


class Pedigree:
    name = "Pedigree"

    def __init__(self, folder: Path, database_url: str, threads: int) -> None:
        self.folder = folder
        self.threads = threads
        self.env = {
            **os.environ,
            "PEDIGREE_DATA_DIR": str(folder),
            "DATABASE_URL": database_url,
            "DEBUG": "false",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT / "client"),
        }
        self.env.pop("CELERY_BROKER_URL", None)
        self.port = free_port(8700)
        self.base = f"http://127.0.0.1:{self.port}"

    def prepare(self) -> None:
        manage = [sys.executable, "manage.py"]
        subprocess.run(
            [*manage, "migrate", "--noinput", "-v", "0"], env=self.env, cwd=ROOT, check=True
        )
        made = subprocess.run(
            [*manage, "shell", "-c", SETUP],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        setup = json.loads(made.stdout.strip().splitlines()[-1])
        self.headers = {"Authorization": f"Token {setup['token']}"}
        self.parent = setup["parent"]

    def serve(self):
        command = [
            str(BIN / "gunicorn"),
            "config.wsgi",
            "--workers",
            str(WORKERS),
            *(
                ["--worker-class", "gthread", "--threads", str(self.threads)]
                if self.threads > 1
                else ["--worker-class", "sync"]
            ),
            "--bind",
            f"127.0.0.1:{self.port}",
        ]
        ready = lambda: answers(f"{self.base}/api/v1/me/", headers=self.headers)  # noqa: E731
        return server(command, self.env, ready, self.folder / "gunicorn.log")

    def register(self, session: requests.Session, n: int) -> tuple[float, float]:
        body = {
            "model": f"bench/intent-{n}",
            "version": "v1",
            "create_model": {"team": "bench", "task": "text-classification"},
            "artefact_digest": f"{n:064x}",
            "licence_declared": "Apache-2.0",
            "parents": [{"version": self.parent, "relation": "finetune"}],
            "training_run": {
                "method": "full_finetune",
                "hyperparameters": {"learning_rate": 2e-5, "epochs": 3, "batch_size": 32},
                "datasets": [{"dataset_version": "bench/tickets@v1", "role": "train"}],
            },
        }
        start = time.perf_counter()
        created = session.post(f"{self.base}/api/v1/registrations/", json=body, timeout=60)
        wrote = time.perf_counter()
        check(created, 201)
        version_id = created.json()["version"]["id"]
        read = session.get(f"{self.base}/api/v1/versions/{version_id}/", timeout=60)
        done = time.perf_counter()
        check(read, 200)
        return wrote - start, done - wrote


class MLflow:
    name = "MLflow"

    def __init__(self, folder: Path, store_uri: str) -> None:
        self.folder = folder
        self.store_uri = store_uri
        self.env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.port = free_port(8750)
        self.base = f"http://127.0.0.1:{self.port}/api/2.0/mlflow"
        self.headers: dict[str, str] = {}

    def prepare(self) -> None:
        """The server creates its schema when it starts."""

    def serve(self):
        command = [
            str(BIN / "mlflow"),
            "server",
            "--backend-store-uri",
            self.store_uri,
            "--default-artifact-root",
            (self.folder / "artifacts").as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(WORKERS),
        ]
        ready = lambda: answers(f"http://127.0.0.1:{self.port}/health")  # noqa: E731
        return server(command, self.env, ready, self.folder / "mlflow.log")

    def register(self, session: requests.Session, n: int) -> tuple[float, float]:
        name = f"bench-intent-{n}"
        start = time.perf_counter()
        check(session.post(f"{self.base}/registered-models/create", json={"name": name}), 200)
        version = session.post(
            f"{self.base}/model-versions/create",
            json={"name": name, "source": f"s3://bench/intent-{n}/model"},
            timeout=60,
        )
        wrote = time.perf_counter()
        check(version, 200)
        label = version.json()["model_version"]["version"]
        read = session.get(
            f"{self.base}/model-versions/get", params={"name": name, "version": label}, timeout=60
        )
        done = time.perf_counter()
        check(read, 200)
        return wrote - start, done - wrote


class Refused(Exception):
    pass


def check(response: requests.Response, status: int) -> None:
    if response.status_code != status:
        raise Refused(f"{response.status_code} {response.text[:200]}")


def drive(systems: list, total: int) -> dict[str, Figures]:
    """`total` registrations on each system, in alternating batches of BATCH, THREADS at once."""
    figures = {system.name: Figures() for system in systems}
    locals_ = {system.name: threading.local() for system in systems}
    counter = iter(range(10**9))

    def one(system) -> None:
        local = locals_[system.name]
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers.update(system.headers)
        try:
            write, read = system.register(local.session, next(counter))
        except (Refused, requests.RequestException) as error:
            figures[system.name].errors.append(str(error))
            return
        figures[system.name].writes.append(write)
        figures[system.name].reads.append(read)
        figures[system.name].done += 1

    with ThreadPoolExecutor(THREADS) as pool:
        for system in systems:  # warm up: connections, caches, first-request imports
            list(pool.map(one, [system] * THREADS))
        for system in systems:
            figures[system.name] = Figures()
        batches = -(-total // BATCH)
        for index in range(batches):
            for system in systems if index % 2 == 0 else reversed(systems):
                start = time.perf_counter()
                list(pool.map(one, [system] * BATCH))
                figures[system.name].seconds += time.perf_counter() - start
    return figures


def ms(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] * 1000


def report(backend: str, figures: dict[str, Figures], threads: int) -> None:
    mlflow, pedigree = figures["MLflow"], figures["Pedigree"]
    pedigree_workers = f"gunicorn gthread, {threads} threads" if threads > 1 else "gunicorn sync"
    print(
        f"\n{backend}: {THREADS} client threads; {WORKERS} server workers each "
        f"(MLflow: uvicorn; Pedigree: {pedigree_workers})"
    )
    heads = ("reg/s", "write p50", "write p99", "read p50", "read p99")
    print(f"{'':10} {heads[0]:>8} {heads[1]:>10} {heads[2]:>10} {heads[3]:>9} {heads[4]:>9} errors")
    for name, f in figures.items():
        print(
            f"{name:10} {f.rate():8.1f} {ms(f.writes, 50):8.1f}ms {ms(f.writes, 99):8.1f}ms "
            f"{ms(f.reads, 50):7.1f}ms {ms(f.reads, 99):7.1f}ms {len(f.errors)}"
        )
        for error in sorted(set(f.errors))[:3]:
            print(f"    error: {error}")
    ratio = pedigree.rate() / mlflow.rate() if mlflow.rate() else float("nan")
    checks = [
        (f"registrations/s {ratio:.2f}x MLflow's", ratio >= RATIO_TARGET, f">= {RATIO_TARGET}x"),
        (
            f"write p99 {ms(pedigree.writes, 99):.1f} vs {ms(mlflow.writes, 99):.1f} ms",
            ms(pedigree.writes, 99) <= ms(mlflow.writes, 99),
            "<= MLflow's",
        ),
        (
            f"read p50 {ms(pedigree.reads, 50):.1f} vs {ms(mlflow.reads, 50):.1f} ms",
            ms(pedigree.reads, 50) <= ms(mlflow.reads, 50),
            "<= MLflow's",
        ),
        (f"errors {len(pedigree.errors)}", not pedigree.errors, "0"),
    ]
    for text, met, target in checks:
        print(f"  {'ok  ' if met else 'MISS'} {text} (target {target})")


def run_backend(backend: str, total: int, pg_url: str, threads: int) -> None:
    folder = Path(tempfile.mkdtemp(prefix=f"pedigree-bench-{backend}-"))
    try:
        if backend == "sqlite":
            pedigree = Pedigree(
                folder / "pedigree", f"sqlite:///{folder / 'pedigree.sqlite3'}", threads
            )
            mlflow = MLflow(folder / "mlflow", f"sqlite:///{folder / 'mlflow.sqlite3'}")
        else:
            mlflow_url = pg_url + "_mlflow"
            if not (recreate_postgres(pg_url) and recreate_postgres(mlflow_url)):
                print(f"\n{backend}: skipped, PostgreSQL not reachable at {pg_url}")
                return
            pedigree = Pedigree(folder / "pedigree", pg_url, threads)
            store = urlunsplit(urlsplit(mlflow_url)._replace(scheme="postgresql+psycopg"))
            mlflow = MLflow(folder / "mlflow", store)
        for system in (pedigree, mlflow):
            system.folder.mkdir(parents=True)
            system.prepare()
        with pedigree.serve(), mlflow.serve():
            report(backend, drive([mlflow, pedigree], total), threads)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 registrations each")
    parser.add_argument("--requests", type=int, help="registrations per server (default 200)")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--threads",
        type=int,
        default=SERVER_THREADS,
        help="per Pedigree worker; >1: gthread workers",
    )
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    if shutil.which("mlflow", path=str(BIN)) is None:
        print("MLflow is not installed: pip install -e '.[bench]' (skipped)")
        return 0
    total = args.requests or (40 if args.quick else 200)
    pg_url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_PG)
    for backend in args.backends.split(","):
        run_backend(backend.strip(), total, pg_url, max(args.threads, 1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
