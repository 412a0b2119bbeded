"""A real multi-process Pedigree web server on a file SQLite database, and concurrent clients
registering through it: shared by the SQLite concurrency test and `bench/bench_faults.py`."""

import os
import socket
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn with several worker processes (each with threads) on `data_dir`'s SQLite file."""

    def __init__(self, data_dir: Path, *, workers: int = 2, threads: int = 4) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # The embedded default: the SQLite file in data_dir, tasks in-process.
        unset = ("DATABASE_URL", "CELERY_BROKER_URL")
        env = {name: value for name, value in os.environ.items() if name not in unset}
        env.update(PEDIGREE_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="config.settings")
        self.log = (data_dir / "server.log").open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi",
                "--bind",
                f"127.0.0.1:{self.port}",
                f"--workers={workers}",
                f"--threads={threads}",
                "--timeout=120",
            ],
            cwd=REPO,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited:\n{self.log_text()}")
            try:
                requests.get(f"{self.url}/api/v1/me/", timeout=30)
                return
            except requests.RequestException:
                time.sleep(0.3)
        raise RuntimeError(f"the server did not start in {timeout} s:\n{self.log_text()}")

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text()[-5000:]

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, 15)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, 9)
                self.process.wait()
        self.log.close()


def register_concurrently(
    url: str, token: str, *, clients: int, per_client: int, team: str, prefix: str
) -> Counter[int]:
    """`clients` threads each register `per_client` versions of their own new model; return
    how many answers had each status code."""

    def client(number: int) -> list[int]:
        session = requests.Session()
        session.headers["Authorization"] = f"Token {token}"
        statuses = []
        for index in range(per_client):
            body = {
                "model": f"{team}/{prefix}-{number}",
                "version": f"v{index}",
                "artefact_digest": f"{number:032x}{index:032x}",
                "licence_declared": "Apache-2.0",
                "create_model": {"team": team},
            }
            statuses.append(
                session.post(f"{url}/api/v1/registrations/", json=body, timeout=120).status_code
            )
        return statuses

    with ThreadPoolExecutor(clients) as pool:
        return Counter(code for codes in pool.map(client, range(clients)) for code in codes)
