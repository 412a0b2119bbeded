"""A training script as an ML engineer writes it, with nothing but `pedigree-client[safetensors]`
installed (numpy and safetensors; no torch): fine-tune last release's churn model, a linear
classifier over two numeric columns, on this month's data; register the data, and the model
with its parent, data and hyperparameters (`track`); evaluate it on the suites attached to the
model; ask the gate whether it may enter staging. tests/client/test_install.py runs it in a
fresh virtualenv against a live server.

    PEDIGREE_URL=… PEDIGREE_TOKEN=… python train_churn.py BASE_DIR TRAIN_CSV OUT_DIR

Prints one JSON line with what it registered and the verdicts; exits 0 when the evaluations
and the gate pass.
"""

import csv
import json
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file, save_file

from pedigree_client import Client, track

HYPERPARAMETERS = {"learning_rate": 0.5, "epochs": 300}


def load_rows(path: Path, features: list[str], labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    with path.open(newline="") as stream:
        rows = list(csv.DictReader(stream))
    x = np.array([[float(row[name]) for name in features] for row in rows])
    y = np.array([labels.index(row["label"]) for row in rows])
    return x, y


def fine_tune(
    weight: np.ndarray,
    bias: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    learning_rate: float,
    epochs: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax regression by full-batch gradient descent, from the base's weights."""
    onehot = np.eye(weight.shape[0])[y]
    for _ in range(epochs):
        logits = x @ weight.T + bias
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        error = (probs - onehot) / len(x)
        weight = weight - learning_rate * error.T @ x
        bias = bias - learning_rate * error.sum(axis=0)
    return weight, bias


def main(base_dir: Path, train_csv: Path, out_dir: Path) -> int:
    client = Client()  # PEDIGREE_URL and PEDIGREE_TOKEN
    data = client.datasets.register(
        train_csv, name="acme/churn-train", version="2026-11", licence="CC-BY-4.0"
    )
    config = json.loads((base_dir / "tabular_config.json").read_text())
    base = load_file(str(base_dir / "model.safetensors"))

    with track(
        client,
        output_dir=out_dir,
        model="acme/churn",
        version="1.1",
        base="acme/churn@1.0",
        datasets={"train": data},
        licence="Apache-2.0",
        risk="limited",
        intended_use="Flag customers likely to cancel, for a retention call",
        known_limitations="Trained on one month of data; two features only",
    ) as run:
        run.log_params(HYPERPARAMETERS)
        x, y = load_rows(train_csv, config["features"], config["labels"])
        mean, scale = x.mean(axis=0), x.std(axis=0)
        weight, bias = fine_tune(
            base["weight"].astype(np.float64),
            base["bias"].astype(np.float64),
            (x - mean) / scale,
            y,
            learning_rate=HYPERPARAMETERS["learning_rate"],
            epochs=HYPERPARAMETERS["epochs"],
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        tensors = {"weight": weight.astype(np.float32), "bias": bias.astype(np.float32)}
        save_file(tensors, str(out_dir / "model.safetensors"))
        config |= {"mean": mean.tolist(), "scale": scale.tolist()}
        (out_dir / "tabular_config.json").write_text(json.dumps(config, indent=2))

    version = run.version
    assert version is not None  # registered when the block ended well
    evaluations = client.evaluate(version)  # every suite attached to acme/churn; waits
    gate = client.gate(version, stage="staging")
    print(
        json.dumps(
            {
                "dataset": data.ref,
                "version": version.ref,
                "digest": version.artefact_digest,
                "runs": [
                    {"id": r.id, "suite": r.suite, "status": r.status, "passed": r.passed}
                    for r in evaluations.runs
                ],
                "gate": {check.check: check.passed for check in gate.checks},
                "gate_passed": gate.passed,
            }
        )
    )
    return 0 if evaluations.passed and gate.passed else 1


if __name__ == "__main__":
    sys.exit(main(*(Path(arg) for arg in sys.argv[1:4])))
