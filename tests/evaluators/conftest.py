"""Evaluator fixtures: tiny real models registered from their files, a dataset with a known
bias, and suites on it.

The dataset (modelfactory.make_biased_dataset, defaults) has 43 rows: region north 16
positive / 4 negative, south 6 / 14, east 2 / 1 (smaller than the suite's minimum group size
of 5, so left out of fairness numbers). Billing sentences are labelled positive, account
sentences negative. So:

* the *biased* classifier, which predicts "positive" for everything, is right on 80 % of
  north and 30 % of south: accuracy gap 0.5, worst group south; overall 24/43;
* the *fair* embedding head, fitted exactly on the twelve distinct sentences, is right on
  every row: accuracy 1.0 in every group, gap 0.0.
"""

from pathlib import Path

import numpy as np
import pytest
import torch

from evaluators.engine.plugins import encode, save_head
from evaluators.models import EvaluationSuite
from evaluators.services import run_request, suite_create
from lineage.services import ParentSpec, registration_create
from pedigree_client.artefacts import sha256_file
from registry import services as registry_services
from tests.evaluators import modelfactory as mf
from tests.evaluators.realworkers import broker, worker_env, workers  # noqa: F401 (fixtures)
from tests.faults.fixtures import broker_down, receiver  # noqa: F401 (fixtures)

LABELS = ["negative", "positive"]
SUITE_DEFAULTS = {
    "input_column": "text",
    "label_column": "label",
    "sensitive_columns": ["region"],
    "batch_size": 8,
    "seed": 0,
    "min_group_size": 5,
    "min_quality": {"accuracy": 0.5},
    "max_fairness_gaps": {"accuracy_gap": 0.1},
    "max_regression": {"accuracy": 0.02},
}
BIASED_ACCURACY = round(24 / 43, 6)


def fit_exact_head(encoder_dir: Path, out_dir: Path) -> Path:
    """A linear head over the encoder's embeddings that classifies every training sentence
    right (least squares onto ±1 targets: twelve points in 32 dimensions)."""
    texts = [s for topic in ("account", "billing") for s in mf.TOPIC_SENTENCES[topic]]
    labels = ["negative"] * 6 + ["positive"] * 6
    features = encode(encoder_dir, texts, 16, torch.device("cpu")).double().numpy()
    design = np.hstack([features, np.ones((len(texts), 1))])
    targets = np.array([[1.0 if label == c else -1.0 for c in LABELS] for label in labels])
    solution, *_ = np.linalg.lstsq(design, targets, rcond=None)
    return save_head(
        out_dir,
        weight=torch.tensor(solution[:-1].T),
        bias=torch.tensor(solution[-1]),
        labels=LABELS,
    )


@pytest.fixture(scope="session")
def zoo(tmp_path_factory) -> dict[str, Path]:
    """The tiny models, built once per session in team acme's area of an artefact root (the
    `root` the tests add to the roots)."""
    zoo_root = tmp_path_factory.mktemp("zoo")
    root = zoo_root / "teams" / "acme"
    classifier = mf.make_tiny_bert_classifier(
        root / "biased-classifier", labels=LABELS, constant_label="positive"
    )
    encoder = mf.make_tiny_bert_encoder(root / "encoder")
    return {
        "root": zoo_root,
        "biased": classifier,
        "lora": mf.make_tiny_lora_adapter(classifier, root / "lora"),
        "encoder": encoder,
        "fair_head": fit_exact_head(encoder, root / "fair-head"),
        "constant_head": mf.make_embedding_head(
            root / "constant-head", encoder, LABELS, constant_label="positive"
        ),
    }


@pytest.fixture
def roots(settings, tmp_path, zoo) -> Path:
    """Artefact roots: a per-test store and the shared zoo. Returns team acme's area of the
    store (datasets, copies), where its engineer may name files."""
    store = tmp_path / "store"
    settings.ARTEFACT_ROOTS = [store, zoo["root"]]
    settings.ARTEFACT_STORE = store
    area = store / "teams" / "acme"
    area.mkdir(parents=True)
    return area


@pytest.fixture
def register(engineer, roots, zoo):
    """`register("acme/x", "v1", "biased", parents=[(version, "adapter")])`: a version
    registered from the zoo's files (or a folder), with its lineage."""

    def make(name, label, files, *, parents=(), actor=None, **attributes):
        folder = zoo[files] if isinstance(files, str) else files
        return registration_create(
            actor=actor or engineer,
            model=name,
            version=label,
            parents=[ParentSpec(parent, relation) for parent, relation in parents],
            artefact_path=str(folder),
            create_model={"team": "acme"},
            **attributes,
        )

    return make


@pytest.fixture
def models(register):
    """The encoder base, the fair head on it, a worse head fine-tuned from the fair one, the
    biased classifier and a LoRA adapter on it."""
    encoder = register("acme/encoder", "v1", "encoder")
    fair = register("acme/fair-head", "v1", "fair_head", parents=[(encoder, "adapter")])
    worse = register("acme/worse-head", "v1", "constant_head", parents=[(fair, "finetune")])
    biased = register("acme/biased", "v1", "biased")
    lora = register("acme/biased-lora", "v1", "lora", parents=[(biased, "adapter")])
    return {"encoder": encoder, "fair": fair, "worse": worse, "biased": biased, "lora": lora}


@pytest.fixture
def biased_dataset(roots, engineer, team):
    """The dataset file in the store, registered as a dataset version with its SHA-256."""
    (roots / "datasets").mkdir()
    dataset = mf.make_biased_dataset(roots / "datasets" / "tickets.csv")
    record = registry_services.dataset_create(actor=engineer, name="acme/tickets-eval", team=team)
    version = registry_services.dataset_version_create(
        actor=engineer,
        dataset=record,
        version="v1",
        sha256=sha256_file(dataset.path),
        size_bytes=dataset.path.stat().st_size,
        uri=dataset.path.as_uri(),
        sensitive_attributes=["region"],
    )
    return version, dataset


@pytest.fixture
def make_suite(engineer, team, biased_dataset):
    def make(name="tickets-fairness", *, models=(), actor=None, **overrides) -> EvaluationSuite:
        return suite_create(
            actor=actor or engineer,
            name=name,
            team=team,
            dataset_version=biased_dataset[0],
            models=list(models),
            **{**SUITE_DEFAULTS, **overrides},
        )

    return make


@pytest.fixture
def evaluate(engineer, django_capture_on_commit_callbacks):
    """Request an evaluation and run it in-process (eager Celery) after the commit."""

    def run(version, suite, *, device="auto", actor=None):
        with django_capture_on_commit_callbacks(execute=True):
            created, _ = run_request(
                actor=actor or engineer, version=version, suite=suite, device=device
            )
        created.refresh_from_db()
        return created

    return run
