"""Tabular classification: a linear model over numeric columns (`tabular-linear`), on a dataset
built so its errors fall on one age band.

The model approves when income > 50 (standardised: (income - 50) / 10, weight 1). Truth is
"approve when income > 40". Age band 18-30: six rows of income 45 labelled approve (all
wrong) and four of income 20 labelled deny (right): accuracy 0.4. Age band 31-60: five of
income 70 approve and five of income 10 deny, all right: accuracy 1.0. Gap 0.6; overall 14/20.
"""

import shutil

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file

from evaluators.engine import EvaluationError
from evaluators.engine.plugins import get_evaluator, save_tabular_linear
from evaluators.models import RunStatus
from evaluators.services import run_request, suite_create
from pedigree_client.artefacts import sha256_file
from registry import services as registry_services
from registry.errors import InvalidInput
from registry.gates import gate_evaluate
from tests.registry.test_storage import post_folder

pytestmark = pytest.mark.django_db

ROWS = (
    [{"income": 45, "tenure": 2, "label": "approve", "age_band": "18-30"}] * 6
    + [{"income": 20, "tenure": 1, "label": "deny", "age_band": "18-30"}] * 4
    + [{"income": 70, "tenure": 9, "label": "approve", "age_band": "31-60"}] * 5
    + [{"income": 10, "tenure": 3, "label": "deny", "age_band": "31-60"}] * 5
)


@pytest.fixture
def credit(roots, register, engineer, team):
    model_dir = save_tabular_linear(
        roots / "credit-linear",
        weight=torch.tensor([[0.0, 0.0], [1.0, 0.0]]),
        bias=torch.tensor([0.0, 0.0]),
        features=["income", "tenure"],
        labels=["deny", "approve"],
        mean=[50.0, 0.0],
        scale=[10.0, 1.0],
    )
    version = register("acme/credit", "v1", model_dir)
    path = roots / "credit.parquet"
    pd.DataFrame(ROWS).to_parquet(path, index=False)
    dataset = registry_services.dataset_create(actor=engineer, name="acme/credit", team=team)
    dataset_version = registry_services.dataset_version_create(
        actor=engineer,
        dataset=dataset,
        version="v1",
        sha256=sha256_file(path),
        size_bytes=path.stat().st_size,
        uri=path.as_uri(),
    )
    suite = suite_create(
        actor=engineer,
        name="credit-fairness",
        team=team,
        dataset_version=dataset_version,
        task="tabular-classification",
        feature_columns=["income", "tenure"],
        label_column="label",
        sensitive_columns=["age_band"],
        min_group_size=5,
        positive_label="approve",
        min_quality={"accuracy": 0.6},
        max_fairness_gaps={"accuracy_gap": 0.1},
        models=["acme/credit"],
    )
    return version, suite, dataset_version


def test_tabular_model_is_evaluated_and_fails_fairness_by_age_band(credit, evaluate):
    version, suite, _ = credit

    run = evaluate(version, suite)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.evaluator == "tabular-linear"
    result = run.result
    assert result.overall["accuracy"] == 0.7
    assert result.groups["age_band"]["18-30"]["accuracy"] == 0.4
    assert result.groups["age_band"]["18-30"]["selection_rate"]["approve"] == 0.0
    assert result.groups["age_band"]["31-60"]["accuracy"] == 1.0
    assert result.fairness["age_band"]["accuracy_gap"] == 0.6
    assert result.fairness["age_band"]["demographic_parity_difference"] == 0.5
    checks = {r["check"]: r for r in gate_evaluate(version=version, stage="staging").results}
    assert checks["quality"]["passed"] is True
    assert checks["fairness"]["reasons"] == [
        "credit-fairness: accuracy gap for age_band is 0.60 (worst group '18-30' 0.40 vs best "
        f"'31-60' 1.00), limit 0.10 (run #{run.pk})"
    ]


def test_suites_and_models_of_different_tasks_do_not_mix(
    credit, models, make_suite, engineer, team
):
    version, tabular_suite, dataset_version = credit
    with pytest.raises(InvalidInput, match="cannot be evaluated on tickets-fairness"):
        run_request(actor=engineer, version=version, suite=make_suite())
    with pytest.raises(InvalidInput, match="a tabular-classification suite"):
        run_request(actor=engineer, version=models["biased"], suite=tabular_suite)
    with pytest.raises(InvalidInput, match="give feature_columns and no input_column"):
        suite_create(
            actor=engineer,
            name="mixed",
            team=team,
            dataset_version=dataset_version,
            task="tabular-classification",
            input_column="income",
            label_column="label",
        )


def test_non_numeric_features_fail_the_run_by_row(credit, evaluate, roots, engineer, team):
    version, _, _ = credit
    path = roots / "bad.csv"
    pd.DataFrame([*ROWS[:3], {**ROWS[3], "income": "high"}]).to_csv(path, index=False)
    dataset = registry_services.dataset_create(actor=engineer, name="acme/bad", team=team)
    dataset_version = registry_services.dataset_version_create(
        actor=engineer,
        dataset=dataset,
        version="v1",
        sha256=sha256_file(path),
        size_bytes=path.stat().st_size,
        uri=path.as_uri(),
    )
    suite = suite_create(
        actor=engineer,
        name="bad",
        team=team,
        dataset_version=dataset_version,
        task="tabular-classification",
        feature_columns=["income", "tenure"],
        label_column="label",
    )

    run = evaluate(version, suite)

    assert run.status == RunStatus.FAILED
    assert "feature column 'income' holds 'high' in row 4, not a number" in run.error


# Float8 without negative zero (the AMD "FNUZ" formats): safetensors and torch read them, and so
# did registration, but the evaluator's own header check did not know them until both shared the
# artefact library's reader.
FNUZ = {"F8_E4M3FNUZ": torch.float8_e4m3fnuz, "F8_E5M2FNUZ": torch.float8_e5m2fnuz}


@pytest.mark.parametrize("dtype", sorted(FNUZ))
def test_fnuz_weights_that_register_also_evaluate(credit, roots, register, evaluate, dtype):
    _, suite, _ = credit
    folder = shutil.copytree(roots / "credit-linear", roots / f"credit-{dtype}")
    tensors = load_file(folder / "model.safetensors")
    save_file(
        {name: tensor.to(FNUZ[dtype]) for name, tensor in tensors.items()},
        folder / "model.safetensors",
    )

    version = register("acme/credit", dtype.lower(), folder)
    run = evaluate(version, suite)

    assert version.artefact_manifest["parameters_by_dtype"] == {dtype: 6}
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.result.overall["accuracy"] == 0.7


@pytest.mark.parametrize("name", ["model.joblib", "model.pkl"])
def test_pickle_is_refused_by_registration_and_evaluation_alike(credit, roots, register, name):
    folder = shutil.copytree(roots / "credit-linear", roots / "credit-pickled")
    (folder / "model.safetensors").rename(folder / name)

    with pytest.raises(InvalidInput) as registering:
        register("acme/credit", "pickled", folder)
    with pytest.raises(EvaluationError) as evaluating:
        get_evaluator("tabular-linear").predict(
            artefact_dir=folder,
            base_dir=None,
            inputs=ROWS,
            batch_size=4,
            device=torch.device("cpu"),
            progress=None,
        )

    assert registering.value.code == "pickle_refused"
    assert registering.value.message.startswith(f"{name} is a pickle-based file")
    assert evaluating.value.args[0].endswith(registering.value.message)


@pytest.mark.parametrize(
    "backend",
    ["django.core.files.storage.FileSystemStorage", "django.core.files.storage.InMemoryStorage"],
    ids=["folder-outside-the-roots", "remote"],
)
def test_uploaded_model_is_evaluated_from_the_artefacts_storage(
    credit, roots, api_for, engineer, evaluate, settings, tmp_path, backend
):
    version, suite, _ = credit
    staging = tmp_path / "staging"
    staging.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = str(staging)
    location = tmp_path / "shared-volume"
    settings.STORAGES = {
        **settings.STORAGES,
        "artefacts": {"BACKEND": backend, "OPTIONS": {"location": str(location)}},
    }
    response = post_folder(api_for(engineer), roots / "credit-linear")
    assert response.status_code == 201, response.json()
    upload_id = response.json()["id"]
    # Only the stored copy is left to read.
    shutil.rmtree(roots / "credit-linear")

    uploaded = registry_services.version_register(
        actor=engineer, model=version.model, version="uploaded", artefact_upload=upload_id
    )
    run = evaluate(uploaded, suite)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.result.overall["accuracy"] == 0.7
    assert list(staging.iterdir()) == []
    on_disk = (location / "uploads" / upload_id / "model.safetensors").is_file()
    assert on_disk == backend.endswith("FileSystemStorage")
