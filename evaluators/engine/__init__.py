"""Pure-Python evaluation engine: real forward passes plus quality and fairness metrics.

Importing this package is cheap (no torch, transformers or pandas): web processes import
`evaluators.engine.thresholds` to judge stored results, and only evaluation workers pay for
the heavy imports, which `run_evaluation` does on first use.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

__all__ = ["EvaluationError", "EvaluationOutcome", "resolve_device", "run_evaluation"]


class EvaluationError(Exception):
    """An evaluation cannot run as asked; the message is meant for the person who asked."""


@dataclass(frozen=True)
class EvaluationOutcome:
    kind: str
    device: str
    torch_version: str
    cuda_version: str | None
    transformers_version: str
    peft_version: str
    dataset_sha256: str
    samples: int
    batch_size: int
    seed: int
    # Whole call, from reading the dataset to the last metric.
    duration_s: float
    # Batched forward passes only (tokenising included), i.e. what samples_per_second divides by.
    inference_s: float
    samples_per_second: float
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_device(device: str | None) -> torch.device:
    """Map "auto"/None, "cpu", "cuda" or "cuda:N" to a usable torch device."""
    import torch

    requested = (device or "auto").strip().lower()
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "cuda" or requested.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise EvaluationError(
                f"Device {device!r} was requested but CUDA is not available on this worker; "
                "use 'auto' or 'cpu', or route the evaluation to a GPU worker."
            )
        try:
            resolved = torch.device(requested)
        except RuntimeError:
            raise EvaluationError(f"Device {device!r} is not a valid CUDA device name.") from None
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise EvaluationError(
                f"Device {device!r} does not exist: this worker has "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
        return resolved
    raise EvaluationError(f"Unknown device {device!r}: use 'auto', 'cpu' or 'cuda'.")


def describe_device(device: torch.device) -> str:
    import torch

    if device.type != "cuda":
        return device.type
    index = device.index if device.index is not None else torch.cuda.current_device()
    return f"cuda:{index} {torch.cuda.get_device_name(index)}"


def run_evaluation(
    *,
    kind: str,
    artefact_dir: Path,
    base_dir: Path | None,
    dataset_path: Path,
    label_column: str,
    sensitive_columns: list[str],
    metrics: list[str],
    batch_size: int,
    seed: int,
    min_group_size: int,
    input_column: str | None = None,
    feature_columns: list[str] | None = None,
    positive_label: str | None = None,
    device: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> EvaluationOutcome:
    """Run one evaluator over a dataset and compute quality and fairness metrics.

    Text evaluators read `input_column`; tabular ones (`tabular-linear`) `feature_columns`.

    Raises EvaluationError for anything the requester can fix (unknown kind, bad dataset,
    missing columns, labels the model does not know, unsafe weight files, no CUDA).
    """
    import numpy as np
    import peft
    import torch
    import transformers

    from evaluators.engine.data import prepare_dataset
    from evaluators.engine.metrics import compute_metrics, validate_metric_names
    from evaluators.engine.plugins import get_evaluator

    started = time.perf_counter()
    if batch_size < 1:
        raise EvaluationError(f"batch_size must be at least 1, not {batch_size}.")
    if min_group_size < 1:
        raise EvaluationError(f"min_group_size must be at least 1, not {min_group_size}.")
    validate_metric_names(metrics)
    evaluator = get_evaluator(kind)
    torch_device = resolve_device(device)
    data = prepare_dataset(
        Path(dataset_path),
        input_column=input_column,
        label_column=label_column,
        sensitive_columns=list(sensitive_columns),
        feature_columns=list(feature_columns) if feature_columns else None,
    )

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)

    predictions = evaluator.predict(
        artefact_dir=Path(artefact_dir),
        base_dir=Path(base_dir) if base_dir is not None else None,
        inputs=data.inputs,
        batch_size=batch_size,
        device=torch_device,
        progress=progress,
    )
    classes = align_classes(predictions.classes, data.labels)
    if positive_label is not None and positive_label not in classes:
        raise EvaluationError(
            f"positive_label {positive_label!r} is not a label of the model; "
            f"its labels are {', '.join(repr(c) for c in classes)}."
        )
    rename = dict(zip(predictions.classes, classes, strict=True))
    result = compute_metrics(
        y_true=data.labels,
        y_pred=[rename[p] for p in predictions.labels],
        scores=predictions.probabilities,
        labels=classes,
        sensitive=data.sensitive,
        metrics=metrics,
        min_group_size=min_group_size,
        positive_label=positive_label,
    )
    duration = time.perf_counter() - started
    samples = len(data.inputs)
    return EvaluationOutcome(
        kind=kind,
        device=describe_device(torch_device),
        torch_version=torch.__version__,
        cuda_version=torch.version.cuda if torch_device.type == "cuda" else None,
        transformers_version=transformers.__version__,
        peft_version=peft.__version__,
        dataset_sha256=data.sha256,
        samples=samples,
        batch_size=batch_size,
        seed=seed,
        duration_s=round(duration, 6),
        inference_s=round(predictions.inference_s, 6),
        samples_per_second=round(samples / max(predictions.inference_s, 1e-9), 3),
        metrics=result,
    )


def align_classes(model_classes: list[str], dataset_labels: list[str]) -> list[str]:
    """Return the model's class names in the dataset's vocabulary.

    A model saved without names has transformers' defaults LABEL_0, LABEL_1, ...; a dataset
    labelled 0, 1, ... then means the same classes, so those names are mapped to digits.
    """
    seen = set(dataset_labels)
    if seen <= set(model_classes):
        return list(model_classes)
    defaults = [f"LABEL_{i}" for i in range(len(model_classes))]
    if list(model_classes) == defaults:
        numbered = [str(i) for i in range(len(model_classes))]
        if seen <= set(numbered):
            return numbered
    unknown = sorted(seen - set(model_classes))
    shown = ", ".join(repr(u) for u in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
    raise EvaluationError(
        f"The dataset's labels {shown} are not labels of the model; "
        f"the model's labels are {', '.join(repr(c) for c in model_classes)}. "
        "Check label_column, or the model's id2label / head labels."
    )
