"""Training-loop integrations against a live server: `track` around a training block, and
`PedigreeCallback` in a real transformers Trainer fine-tuning a tiny BERT on the CPU."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from evaluators.models import EvaluationRun
from lineage.models import LineageEdge, TrainingRun
from pedigree_client import track
from registry.models import ArtefactUpload, ModelVersion
from tests.evaluators import modelfactory as mf
from tests.registry.test_artefacts import build_full_model, write

pytestmark = pytest.mark.django_db(transaction=True)

CLIENT_ROOT = Path(__file__).resolve().parents[2] / "client"


@pytest.fixture
def tickets(pedigree, tmp_path):
    data = write(tmp_path / "train.csv", b"text,label\nrefund please,positive\n")
    return pedigree.datasets.register(data, name="acme/tickets", version="2024-06")


def test_track_registers_the_output_with_the_run(pedigree, base, tickets, tmp_path):
    out = tmp_path / "out"
    with track(
        pedigree,
        output_dir=out,
        model="acme/intent",
        version="1.1",
        base=str(base),
        datasets={"train": tickets},
        licence="Apache-2.0",
        team="acme",
        risk="limited",
    ) as run:
        run.log_params({"learning_rate": 2e-5}, epochs=1, seed=0)
        build_full_model(out)  # the training script saves its model

    assert run.version is not None and run.version.ref == "acme/intent@1.1"
    assert run.version.risk_tier == "limited"
    version = ModelVersion.objects.get(pk=run.version.id)
    assert LineageEdge.objects.get(child=version).parent_id == base.pk
    recorded = TrainingRun.objects.get(version=version)
    assert recorded.method == "full_finetune"  # from the relation
    assert recorded.hyperparameters == {"learning_rate": 2e-5, "epochs": 1, "seed": 0}
    assert recorded.framework_versions["python"] == platform.python_version()
    assert "torch" in recorded.framework_versions
    assert recorded.device_kind == "cpu" and recorded.gpu_hours is None
    assert recorded.started_at <= recorded.finished_at
    assert recorded.datasets.get().role == "train"


def test_track_registers_nothing_when_training_fails(pedigree, base, tmp_path):
    out = tmp_path / "out"
    with (
        pytest.raises(RuntimeError, match="diverged"),
        track(pedigree, output_dir=out, model="acme/intent", version="1.1", team="acme") as run,
    ):
        build_full_model(out)
        raise RuntimeError("loss diverged")

    assert run.version is None
    assert not ModelVersion.objects.filter(model__name="acme/intent").exists()
    assert not ArtefactUpload.objects.exists()


def test_the_client_imports_without_transformers_or_torch():
    code = (
        "import sys, pedigree_client, pedigree_client.integrations as i; "
        "assert not {'transformers', 'torch', 'django'} & set(sys.modules), sys.modules.keys(); "
        "assert callable(i.track)"
    )
    env = {**os.environ, "PYTHONPATH": str(CLIENT_ROOT)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=CLIENT_ROOT)


@pytest.mark.slow
def test_trainer_callback_registers_the_fine_tune_then_it_is_evaluated(
    pedigree, tickets, store, tmp_path
):
    from transformers import (
        BertForSequenceClassification,
        BertTokenizerFast,
        Trainer,
        TrainingArguments,
    )

    from pedigree_client.integrations import PedigreeCallback

    base_dir = mf.make_tiny_bert_classifier(tmp_path / "base")
    base = pedigree.register(base_dir, model="acme/intent", version="1.0", team="acme")
    tokenizer = BertTokenizerFast.from_pretrained(str(base_dir))
    examples = [
        {**tokenizer(sentence), "labels": int(topic == "billing")}
        for topic, sentences in mf.TOPIC_SENTENCES.items()
        for sentence in sentences
    ]
    callback = PedigreeCallback(
        pedigree,
        model="acme/intent",
        version="1.1",
        base=base,
        datasets={"train": tickets},
        licence="Apache-2.0",
        hyperparameters={"max_seq_length": 64},
    )
    trainer = Trainer(
        model=BertForSequenceClassification.from_pretrained(str(base_dir)),
        args=TrainingArguments(
            output_dir=str(tmp_path / "trainer"),
            max_steps=2,
            per_device_train_batch_size=4,
            learning_rate=1e-3,
            use_cpu=True,
            report_to="none",
            save_strategy="no",
            logging_strategy="no",
            disable_tqdm=True,
        ),
        train_dataset=examples,
        processing_class=tokenizer,
        callbacks=[callback],
    )

    trainer.train()

    registered = callback.run.version
    assert registered.ref == "acme/intent@1.1"
    version = ModelVersion.objects.get(pk=registered.id)
    files = {file["path"] for file in version.artefact_manifest["files"]}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= files
    assert version.artefact_digest != base.artefact_digest
    edge = LineageEdge.objects.get(child=version)
    assert (edge.parent_id, edge.relation) == (base.id, "finetune")
    run = TrainingRun.objects.get(version=version)
    assert run.method == "full_finetune"
    hyperparameters = dict(run.hyperparameters)
    assert hyperparameters.pop("optimizer").startswith("adamw_torch")
    assert hyperparameters == {
        "learning_rate": 1e-3,
        "max_steps": 2,
        "batch_size": 4,
        "gradient_accumulation_steps": 1,
        "seed": 42,
        "weight_decay": 0.0,
        "lr_scheduler": "linear",
        "precision": "fp32",
        "warmup_steps": 0,
        "max_seq_length": 64,
    }
    assert run.framework_versions["transformers"] == sys.modules["transformers"].__version__
    assert run.device_kind == "cpu"
    assert run.datasets.get().dataset_version.version == "2024-06"

    # Team acme's area of the artefact roots, where its datasets' files lie.
    (store / "teams" / "acme" / "eval").mkdir(parents=True)
    data = mf.make_biased_dataset(store / "teams" / "acme" / "eval" / "tickets.csv").path
    evaluation = pedigree.datasets.register(
        data, name="acme/tickets-eval", version="v1", uri=data.as_uri()
    )
    pedigree.api.post(
        "evaluation-suites/",
        {
            "name": "tickets",
            "team": "acme",
            "dataset_version": evaluation.ref,
            "input_column": "text",
            "label_column": "label",
            "models": ["acme/intent"],
        },
    )

    evaluations = pedigree.evaluate("acme/intent@1.1", timeout=120, interval=0.2)

    [finished] = evaluations.runs
    assert evaluations.created == (finished.id,)

    assert finished.status == "succeeded", finished.error
    assert finished.finished and finished.suite == "tickets"
    assert finished.result is not None and finished.samples == 43
    assert EvaluationRun.objects.get().version_id == registered.id
