"""The demo's synthetic tickets and the head trained on them over real all-MiniLM-L6-v2."""

import csv
from pathlib import Path

import pytest

from demo.data import (
    AGE_BANDS,
    CSV_COLUMNS,
    DIALECT_REGION,
    LABELS,
    REGIONS,
    build_demo_datasets,
    generate_tickets,
    read_csv,
)

DATASETS = ("train_permissive", "train_skewed", "train_noncommercial", "eval")


def _bytes(paths: dict[str, Path]) -> dict[str, bytes]:
    return {name: path.read_bytes() for name, path in paths.items()}


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict[str, Path]:
    return build_demo_datasets(tmp_path_factory.mktemp("small"), size="small")


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> dict[str, Path]:
    return build_demo_datasets(tmp_path_factory.mktemp("full"), size="full")


def test_same_seed_writes_byte_identical_files(tmp_path, small):
    again = build_demo_datasets(tmp_path, size="small")

    assert sorted(again) == sorted(DATASETS)
    assert _bytes(again) == _bytes(small)


def test_another_seed_writes_different_files(tmp_path, small):
    other = build_demo_datasets(tmp_path, seed=7, size="small")

    for name in DATASETS:
        assert other[name].read_bytes() != small[name].read_bytes(), name


@pytest.mark.parametrize(
    ("size", "train_rows", "eval_rows"), [("small", 200, 128), ("full", 800, 400)]
)
def test_row_counts_and_columns(request, size, train_rows, eval_rows):
    paths = request.getfixturevalue(size)

    for name, path in paths.items():
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            assert tuple(next(reader)) == CSV_COLUMNS
            assert sum(1 for _ in reader) == (eval_rows if name == "eval" else train_rows)


@pytest.mark.parametrize("size", ["small", "full"])
def test_every_evaluation_group_has_at_least_30_rows(request, size):
    rows = read_csv(request.getfixturevalue(size)["eval"])

    for column, groups in (("region", REGIONS), ("age_band", AGE_BANDS), ("label", LABELS)):
        counts = {group: sum(row[column] == group for row in rows) for group in groups}
        assert min(counts.values()) >= 30, (column, counts)


def test_labels_and_sensitive_attributes_use_the_documented_values(full):
    for path in full.values():
        rows = read_csv(path)
        assert {row["label"] for row in rows} == set(LABELS)
        assert {row["region"] for row in rows} == set(REGIONS)
        assert {row["age_band"] for row in rows} == set(AGE_BANDS)
        assert len({row["ticket_id"] for row in rows}) == len(rows)
        assert all(row["text"].strip() for row in rows)


def test_skewed_set_is_the_permissive_set_with_southern_labels_misread(full):
    permissive, skewed = read_csv(full["train_permissive"]), read_csv(full["train_skewed"])

    assert [row["text"] for row in skewed] == [row["text"] for row in permissive]
    changed = [
        (before, after)
        for before, after in zip(permissive, skewed, strict=True)
        if before["label"] != after["label"]
    ]
    assert {before["region"] for before, _ in changed} == {DIALECT_REGION}
    southern = sum(row["region"] == DIALECT_REGION for row in permissive)
    assert len(changed) >= 0.3 * southern


def test_region_weights_and_validation():
    rows = generate_tickets(n=90, seed=1, region_weights={"north": 2, "east": 1})

    assert sum(row["region"] == "north" for row in rows) == 60
    assert {row["region"] for row in rows} == {"north", "east"}
    with pytest.raises(ValueError, match="Unknown regions"):
        generate_tickets(n=10, seed=1, region_weights={"atlantis": 1})
    with pytest.raises(ValueError, match="between 0 and 1"):
        generate_tickets(n=10, seed=1, label_noise_for={"south": 2})


def _region_accuracy(head_dir: Path, features, rows: list[dict]) -> dict[str, float]:
    from evaluators.engine.plugins import load_head

    config, weight, bias = load_head(head_dir)
    predicted = [config.labels[i] for i in (features @ weight.T + bias).argmax(dim=1).tolist()]
    accuracy = {}
    for region in REGIONS:
        hits = [
            label == row["label"]
            for label, row in zip(predicted, rows, strict=True)
            if row["region"] == region
        ]
        accuracy[region] = sum(hits) / len(hits)
    return accuracy


@pytest.mark.slow
def test_skewed_head_is_unfair_to_the_south_and_the_permissive_one_is_not(tmp_path, small):
    from demo.train import SnapshotMissingError, minilm_snapshot_dir, train_embedding_head

    try:
        base_dir = minilm_snapshot_dir()
    except SnapshotMissingError as exc:
        pytest.skip(str(exc))
    import torch

    from evaluators.engine.plugins import encode

    evaluation = read_csv(small["eval"])
    # The evaluator's own featurisation, computed once for both heads.
    features = encode(base_dir, [row["text"] for row in evaluation], 64, torch.device("cpu"))

    accuracy = {}
    for name in ("train_permissive", "train_skewed"):
        run = train_embedding_head(
            base_dir=base_dir, train_csv=small[name], out_dir=tmp_path / name, device="cpu"
        )
        assert (tmp_path / name / "head.safetensors").is_file()
        assert run["labels"] == sorted(LABELS)
        assert run["train_rows"] == 200
        assert run["hyperparameters"]["seed"] == 0
        assert run["device"] == "cpu"
        accuracy[name] = _region_accuracy(tmp_path / name, features, evaluation)

    def gap(per_region: dict[str, float]) -> float:
        return max(per_region.values()) - min(per_region.values())

    permissive, skewed = accuracy["train_permissive"], accuracy["train_skewed"]
    assert min(permissive.values()) >= 0.75, permissive
    assert skewed[DIALECT_REGION] == min(skewed.values()), skewed
    assert gap(skewed) >= gap(permissive) + 0.2, accuracy
