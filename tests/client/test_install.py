"""The client installed alone, as a CI job or a training machine installs it: the wheel built
from client/ and pip-installed with its `safetensors` extra into a fresh virtualenv (no system
site-packages), where nothing of Django, DRF, torch, Celery or the server exists. There it
imports none of them, and a training script (train_churn.py) trains a tiny model, registers its
data and the model through `track`, evaluates and gates it against a live server; then
`pedigree gate` writes the JUnit report a CI job publishes.

The wheel is built offline with this environment's setuptools; its dependencies come from the
package indexes this environment's pip is configured with, as for `make install`. One
virtualenv serves the whole module.
"""

import csv
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pytest
from safetensors.numpy import save_file

from evaluators.models import EvaluationRun
from evaluators.services import suite_create
from lineage.models import LineageEdge, TrainingRun
from registry.models import DatasetVersion, ModelVersion, StagePolicy

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SERVER_SIDE = {
    "django",
    "rest_framework",
    "torch",
    "celery",
    "config",
    "registry",
    "lineage",
    "licensing",
    "evaluators",
    "demo",
}
IMPORT_CHECK = """
import json, sys
import pedigree_client, pedigree_client.api, pedigree_client.artefacts, pedigree_client.cli
from pedigree_client import Client, track
print(json.dumps({"file": pedigree_client.__file__, "modules": sorted(sys.modules)}))
"""
DISTRIBUTIONS = (
    "import importlib.metadata as m; print(sorted(d.metadata['Name'].lower() "
    "for d in m.distributions()))"
)


def _run(*command: str | Path, **env: str) -> str:
    """Run `command` with `env` added to this process's environment less its PYTHON*
    variables: nothing of the worktree's client on PYTHONPATH leaks into the virtualenv."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    result = subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        env=clean | env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("client-alone")
    source = root / "client"
    shutil.copytree(
        ROOT / "client",
        source,
        ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
    )
    wheels = root / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run(*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", wheels, source)
    (wheel,) = wheels.glob("pedigree_client-*.whl")
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    # Without compiling to bytecode: a third of the install's time, for files most never run.
    _run(
        *pip,
        "--python",
        venv / "bin" / "python",
        "install",
        "-q",
        "--no-compile",
        f"{wheel}[safetensors]",
    )
    return venv


def test_the_client_installs_alone_and_imports_nothing_of_the_server(venv):
    python = venv / "bin" / "python"
    installed = set(json.loads(_run(python, "-I", "-c", DISTRIBUTIONS).replace("'", '"')))
    assert {"pedigree-client", "requests", "tqdm", "safetensors", "numpy"} <= installed
    assert not {"django", "djangorestframework", "torch", "celery", "transformers"} & installed

    loaded = json.loads(_run(python, "-I", "-c", IMPORT_CHECK))
    assert Path(loaded["file"]).is_relative_to(venv)
    assert [m for m in loaded["modules"] if m.split(".")[0] in SERVER_SIDE] == []

    usage = _run(venv / "bin" / "pedigree", "--help")
    assert "usage: pedigree" in usage and "examples:" in usage


FEATURES, LABELS = ["tenure", "spend"], ["stay", "churn"]


def _churn_csv(path: Path, *, rows: int, seed: int) -> Path:
    """Customers who spend much and joined lately tend to leave, in both regions alike."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, ["tenure", "spend", "region", "label"])
        writer.writeheader()
        for index in range(rows):
            tenure, spend = rng.randint(1, 60), rng.randint(10, 200)
            leaves = spend / 100 - tenure / 24 + rng.gauss(0, 0.2) > 0
            writer.writerow(
                {
                    "tenure": tenure,
                    "spend": spend,
                    "region": ("north", "south")[index % 2],
                    "label": LABELS[leaves],
                }
            )
    return path


@pytest.fixture
def released_base(pedigree, tmp_path) -> Path:
    """acme/churn@1.0 as released (a linear model that always answers "stay"), on disk where
    the engineer fine-tunes it and in the registry."""
    base = tmp_path / "churn-1.0"
    base.mkdir()
    zeros = {"weight": np.zeros((2, 2), np.float32), "bias": np.zeros(2, np.float32)}
    save_file(zeros, str(base / "model.safetensors"))
    (base / "tabular_config.json").write_text(json.dumps({"features": FEATURES, "labels": LABELS}))
    pedigree.register(base, model="acme/churn", version="1.0", team="acme", licence="Apache-2.0")
    return base


@pytest.fixture
def churn_suite(pedigree, store, engineer, team, released_base):
    """The team's evaluation suite, attached to acme/churn; staging needs its limits met."""
    # In the team's area, where evaluations may read the team's data.
    data = _churn_csv(store / "teams" / "acme" / "eval" / "churn.csv", rows=200, seed=2)
    pedigree.datasets.register(
        data, name="acme/churn-eval", version="v1", licence="CC-BY-4.0", uri=data.as_uri()
    )
    StagePolicy.objects.update_or_create(
        stage="staging",
        risk_tier="limited",
        defaults={"required_checks": ["metadata", "quality", "fairness"], "approvals_required": 0},
    )
    return suite_create(
        actor=engineer,
        name="churn-fairness",
        team=team,
        dataset_version=DatasetVersion.objects.get(dataset__name="acme/churn-eval"),
        task="tabular-classification",
        feature_columns=FEATURES,
        label_column="label",
        sensitive_columns=["region"],
        positive_label="churn",
        min_group_size=20,
        min_quality={"accuracy": 0.85},
        max_fairness_gaps={"accuracy_gap": 0.1},
        models=["acme/churn"],
    )


@pytest.mark.django_db(transaction=True)
def test_a_training_script_registers_evaluates_and_gates_its_model(
    venv, live_server, token, released_base, churn_suite, tmp_path
):
    train = _churn_csv(tmp_path / "train.csv", rows=400, seed=1)
    out = tmp_path / "out"
    env = {"PEDIGREE_URL": live_server.url, "PEDIGREE_TOKEN": token}
    script = [venv / "bin" / "python", "-I", HERE / "train_churn.py"]

    summary = json.loads(_run(*script, released_base, train, out, **env).splitlines()[-1])

    version = ModelVersion.objects.get(model__name="acme/churn", version="1.1")
    assert summary["version"] == str(version) == "acme/churn@1.1"
    assert summary["digest"] == version.artefact_digest
    assert {f["path"] for f in version.artefact_manifest["files"]} == {
        "model.safetensors",
        "tabular_config.json",
    }
    edge = LineageEdge.objects.get(child=version)
    assert (str(edge.parent), edge.relation) == ("acme/churn@1.0", "finetune")
    run = TrainingRun.objects.get(version=version)
    assert (run.method, run.hyperparameters) == (
        "full_finetune",
        {"learning_rate": 0.5, "epochs": 300},
    )
    assert "python" in run.framework_versions and "torch" not in run.framework_versions
    (used,) = run.datasets.all()
    assert (str(used.dataset_version), used.role) == ("acme/churn-train@2026-11", "train")
    assert used.dataset_version.row_count == 400 and summary["dataset"] == str(used.dataset_version)
    evaluation = EvaluationRun.objects.get(version=version)
    assert evaluation.evaluator == "tabular-linear"
    assert summary["runs"] == [
        {"id": evaluation.pk, "suite": "churn-fairness", "status": "succeeded", "passed": True}
    ]
    assert evaluation.result.overall["accuracy"] >= 0.85
    required = ("metadata", "quality", "fairness")
    assert [summary["gate"][check] for check in required] == [True] * 3
    assert summary["gate_passed"] is True

    # The CI step: the slim CLI from the same virtualenv, with a JUnit report.
    report = tmp_path / "gate.xml"
    gate = [venv / "bin" / "pedigree", "gate", "acme/churn@1.1", "--stage", "staging"]
    output = _run(*gate, "--junit", report, **env)
    assert output.startswith("PASS: acme/churn@1.1 → staging")
    assert f"/admin/registry/modelversion/{version.pk}/governance/" in output
    suite = ET.fromstring(report.read_bytes())  # noqa: S314  # written by this test
    cases = {case.get("name") for case in suite.iter("testcase")}
    assert {"metadata", "quality", "fairness"} <= cases and suite.get("failures") == "0"
