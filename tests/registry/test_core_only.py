"""The core works with no other app installed: `manage.py check` and tests/core_only run in a
process of their own with tests/settings_core_only.py (settings and the app registry are per
process, so they cannot run inside this one)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    # SQLite in a scratch folder: a PostgreSQL DATABASE_URL would share this run's test database.
    env = {key: value for key, value in os.environ.items() if key != "DATABASE_URL"}
    env |= {
        "DJANGO_SETTINGS_MODULE": "tests.settings_core_only",
        "PEDIGREE_DATA_DIR": str(data_dir),
    }
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_the_core_runs_alone(tmp_path):
    checked = _run("manage.py", "check", data_dir=tmp_path)
    assert checked.returncode == 0, checked.stderr

    tested = _run(
        "-m", "pytest", "tests/core_only", "-q", "-p", "no:cacheprovider", data_dir=tmp_path
    )
    assert tested.returncode == 0, tested.stdout[-6000:] + tested.stderr[-3000:]
    assert " passed" in tested.stdout and "skipped" not in tested.stdout
