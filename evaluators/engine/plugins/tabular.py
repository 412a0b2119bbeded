"""The `tabular-linear` evaluator: a linear classifier over standardised numeric features, and
`save_tabular_linear`, which writes one in the format it reads."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from evaluators.engine import EvaluationError
from evaluators.engine.plugins.registry import (
    Predictions,
    ProgressCallback,
    predict_batched,
    register,
)
from evaluators.engine.plugins.weights import read_json, require_dir, require_safetensors_weights

TABULAR_CONFIG = "tabular_config.json"


def _names(document: dict[str, Any], name: str) -> list[str]:
    names = document.get(name)
    if (
        not isinstance(names, list)
        or not names
        or not all(isinstance(item, str) and item for item in names)
        or len(set(names)) != len(names)
    ):
        raise EvaluationError(f"{TABULAR_CONFIG}: {name} must be a non-empty list of unique names.")
    return names


@dataclass(frozen=True)
class TabularConfig:
    features: list[str]
    labels: list[str]
    mean: list[float]
    scale: list[float]

    @classmethod
    def parse(cls, document: dict[str, Any]) -> TabularConfig:
        features, labels = _names(document, "features"), _names(document, "labels")
        count = len(features)
        mean = document.get("mean", [0.0] * count)
        scale = document.get("scale", [1.0] * count)
        for name, values in (("mean", mean), ("scale", scale)):
            if not (
                isinstance(values, list)
                and len(values) == count
                and all(type(v) in (int, float) and np.isfinite(v) for v in values)
            ):
                raise EvaluationError(
                    f"{TABULAR_CONFIG}: {name} must list one finite number per feature ({count})."
                )
        if any(v <= 0 for v in scale):
            raise EvaluationError(f"{TABULAR_CONFIG}: every scale must be positive.")
        return cls(features, labels, [float(v) for v in mean], [float(v) for v in scale])


def save_tabular_linear(
    out_dir: Path,
    *,
    weight: torch.Tensor,
    bias: torch.Tensor,
    features: list[str],
    labels: list[str],
    mean: list[float] | None = None,
    scale: list[float] | None = None,
) -> Path:
    """Write a linear classifier over numeric features in the format `tabular-linear` reads:
    `model.safetensors` (`weight` [num_labels, num_features], `bias` [num_labels]) and
    `tabular_config.json` (features in column order of `weight`, labels in row order, and the
    optional standardisation `(x - mean) / scale`). Returns out_dir."""
    document: dict[str, Any] = {"features": list(features), "labels": [str(v) for v in labels]}
    if mean is not None:
        document["mean"] = [float(v) for v in mean]
    if scale is not None:
        document["scale"] = [float(v) for v in scale]
    config = TabularConfig.parse(document)
    weight = torch.as_tensor(weight).detach().to("cpu", torch.float32).contiguous()
    bias = torch.as_tensor(bias).detach().to("cpu", torch.float32).contiguous()
    _check_tabular_shapes(weight, bias, config)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tensors = {"weight": weight, "bias": bias}
    save_file(tensors, str(out_dir / "model.safetensors"), {"format": "pt"})
    (out_dir / TABULAR_CONFIG).write_text(json.dumps(document, indent=2) + "\n")
    return out_dir


def _check_tabular_shapes(weight: torch.Tensor, bias: torch.Tensor, config: TabularConfig) -> None:
    expected = [len(config.labels), len(config.features)]
    if list(weight.shape) != expected:
        raise EvaluationError(
            f"The tabular model's weight must have shape {expected} (labels by features), not "
            f"{list(weight.shape)}."
        )
    if list(bias.shape) != expected[:1]:
        raise EvaluationError(
            f"The tabular model's bias must have shape {expected[:1]}, not {list(bias.shape)}."
        )


@register("tabular-linear")
class TabularLinearEvaluator:
    """A linear (multinomial logistic) classifier over numeric feature columns."""

    kind: str

    def predict(
        self,
        *,
        artefact_dir: Path,
        base_dir: Path | None,
        inputs: list[Any],
        batch_size: int,
        device: torch.device,
        progress: ProgressCallback | None,
    ) -> Predictions:
        directory = require_dir(artefact_dir, "artefact", self.kind)
        config = TabularConfig.parse(read_json(directory / TABULAR_CONFIG, "tabular model"))
        (weights_file,) = require_safetensors_weights(directory, "model", role="tabular model")
        try:
            tensors = load_file(str(weights_file))
        except SafetensorError as exc:
            raise EvaluationError(
                f"model.safetensors in {directory} cannot be read: {exc}"
            ) from None
        missing = {"weight", "bias"} - tensors.keys()
        if missing:
            raise EvaluationError(
                "model.safetensors of the tabular model lacks tensor(s) "
                f"{', '.join(sorted(missing))}."
            )
        weight, bias = tensors["weight"].float(), tensors["bias"].float()
        _check_tabular_shapes(weight, bias, config)
        if inputs and not isinstance(inputs[0], dict):
            raise EvaluationError(
                f"Kind {self.kind!r} reads numeric feature columns; name the suite's "
                "feature_columns instead of a text input column."
            )
        absent = [name for name in config.features if inputs and name not in inputs[0]]
        if absent:
            raise EvaluationError(
                f"The tabular model needs feature(s) {', '.join(repr(a) for a in absent)}, which "
                "are not among the suite's feature columns."
            )
        weight, bias = weight.to(device), bias.to(device)
        mean = torch.tensor(config.mean, device=device)
        scale = torch.tensor(config.scale, device=device)

        def logits_for(batch: list[dict[str, float]]) -> torch.Tensor:
            rows = torch.tensor(
                [[row[name] for name in config.features] for row in batch], dtype=torch.float32
            ).to(device, non_blocking=True)
            return ((rows - mean) / scale) @ weight.T + bias

        return predict_batched(
            inputs,
            classes=config.labels,
            batch_size=batch_size,
            progress=progress,
            logits_for=logits_for,
        )
