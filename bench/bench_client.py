"""Benchmark what a CI job pays for the client: its size, and how long `pedigree` takes to start.

    python bench/bench_client.py [--runs 15]

Sizes: the `pedigree_client` package's source files, and the wheel `pip wheel` builds offline
(with this environment's setuptools). Import times, each in a fresh interpreter, median of
--runs, with the modules each pulls in beyond a bare interpreter: the Python API
(`from pedigree_client import Client`), what `pedigree` loads before it parses its arguments
(`pedigree_client.cli`), and what `pedigree gate` loads in all (its command module and the HTTP
library). Start-up: the whole `pedigree --help`, and `pedigree gate` up to its first request
(refused by a closed port), as fresh processes; the interpreter's own start is printed apart.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLIENT = ROOT / "client"
PACKAGE = CLIENT / "pedigree_client"
WHEEL_TARGET_KIB = 100
IMPORT_TARGET_MS = 300
SERVER_SIDE = {"django", "rest_framework", "torch", "celery", "registry", "lineage", "evaluators"}
# This checkout's client, whichever one is installed.
ENV = {**os.environ, "PYTHONPATH": str(CLIENT)}

PROBE = """
import json, sys, time
before = set(sys.modules)
start = time.perf_counter()
{statement}
elapsed = time.perf_counter() - start
print(json.dumps({{"seconds": elapsed, "modules": sorted(set(sys.modules) - before)}}))
"""
IMPORTS = [
    ("the Python API", "from pedigree_client import Client"),
    ("pedigree (before parsing)", "import pedigree_client.cli"),
    ("pedigree gate", "import pedigree_client.cli.gate, requests"),
]
# A port nothing listens on: `pedigree gate` starts, parses, connects and fails at once (exit 2).
CLOSED = "http://127.0.0.1:9"
COMMANDS = [
    ("pedigree --help", ["--help"]),
    ("pedigree gate", ["--url", CLOSED, "--token", "t", "gate", "a/b@1", "--stage", "staging"]),
]


def source_size() -> tuple[int, int]:
    files = [p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts]
    return len(files), sum(p.stat().st_size for p in files)


def wheel_size() -> int | None:
    """Size of the wheel built offline, or None when this environment cannot build it."""
    with tempfile.TemporaryDirectory(prefix="pedigree-bench-") as folder:
        # A copy: building in place would leave build/ and *.egg-info in client/.
        source = Path(folder) / "client"
        shutil.copytree(
            CLIENT, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
        )
        built = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "--quiet",
                "-w",
                str(Path(folder) / "wheels"),
                str(source),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        wheels = list((Path(folder) / "wheels").glob("pedigree_client-*.whl"))
        if built.returncode or not wheels:
            print(f"(wheel not built: {built.stderr.strip().splitlines()[-1:]})")
            return None
        return wheels[0].stat().st_size


def import_probe(statement: str, runs: int) -> tuple[float, list[str]]:
    """Median time of `statement` in ms and the modules it adds, each run a fresh process."""
    times, modules = [], []
    for _ in range(runs):
        output = subprocess.run(
            [sys.executable, "-c", PROBE.format(statement=statement)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env=ENV,
        ).stdout
        probe = json.loads(output)
        times.append(probe["seconds"] * 1000)
        modules = probe["modules"]
    return statistics.median(times), modules


def process_ms(arguments: list[str], runs: int) -> tuple[float, float]:
    """Median wall time and CPU time (user + system) in ms of a fresh interpreter running
    them. CPU time barely moves with the machine's load; wall time is what people wait."""
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, *arguments], capture_output=True, check=False, cwd=ROOT, env=ENV
        )
        walls.append((time.perf_counter() - start) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        cpus.append(cpu * 1000)
    return statistics.median(walls), statistics.median(cpus)


def distributions(modules: list[str]) -> list[str]:
    """The installed distributions those modules come from (the client's dependencies)."""
    providers = packages_distributions()
    tops = {name.split(".")[0] for name in modules}
    return sorted({dist for top in tops for dist in providers.get(top, [])}, key=str.lower)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters per import")
    options = parser.parse_args()

    count, size = source_size()
    print(f"package pedigree_client: {count} source files, {size / 1024:.0f} KiB")
    wheel = wheel_size()
    if wheel is not None:
        verdict = "OK" if wheel / 1024 < WHEEL_TARGET_KIB else "over"
        print(f"wheel: {wheel / 1024:.0f} KiB (target < {WHEEL_TARGET_KIB} KiB) {verdict}")
    for what, statement in IMPORTS:
        median_ms, modules = import_probe(statement, options.runs)
        verdict = "OK" if median_ms < IMPORT_TARGET_MS else "over"
        print(
            f"import for {what}: {median_ms:.1f} ms median of {options.runs} fresh interpreters "
            f"(target < {IMPORT_TARGET_MS} ms) {verdict}; {len(modules)} modules, "
            f"from {', '.join(distributions(modules)) or 'the standard library only'}"
        )
        server = sorted({m.split(".")[0] for m in modules} & SERVER_SIDE)
        if server:
            print(f"  loads server-side packages: {', '.join(server)}")
    bare_wall, bare_cpu = process_ms(["-c", "pass"], options.runs)
    print(f"interpreter start-up alone: {bare_wall:.0f} ms wall, {bare_cpu:.0f} ms CPU")
    for what, argv in COMMANDS:
        code = f"import sys; from pedigree_client.cli import main; sys.exit(main({argv!r}))"
        wall, cpu = process_ms(["-c", code], options.runs)
        verdict = "OK" if cpu < IMPORT_TARGET_MS else "over"
        print(
            f"{what}: {wall:.0f} ms wall, {cpu:.0f} ms CPU for the whole process, median of "
            f"{options.runs} (target < {IMPORT_TARGET_MS} ms CPU) {verdict}"
        )


if __name__ == "__main__":
    main()
