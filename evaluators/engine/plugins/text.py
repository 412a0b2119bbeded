"""Text classifiers: a complete transformers sequence classifier, and a PEFT adapter over one.

Loading is local-only (`local_files_only=True`, never remote code), so nothing reaches the
network, and the weights are checked by `weights.require_safetensors_weights` first.
"""

from pathlib import Path
from typing import Any

import torch

from evaluators.engine import EvaluationError
from evaluators.engine.plugins.registry import (
    Predictions,
    ProgressCallback,
    predict_batched,
    register,
)
from evaluators.engine.plugins.weights import read_json, require_dir, require_safetensors_weights


def max_tokens(tokenizer: Any, config: Any, requested: int | None = None) -> int:
    limits = [
        value
        for value in (requested, getattr(config, "max_position_embeddings", None))
        if isinstance(value, int) and value > 0
    ]
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max < 1_000_000:
        limits.append(model_max)
    return min(limits) if limits else 512


def tokenize(tokenizer: Any, batch: list[str], max_length: int, device: torch.device) -> Any:
    encoded = tokenizer(
        batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    return {name: tensor.to(device, non_blocking=True) for name, tensor in encoded.items()}


def load_tokenizer(directory: Path, role: str) -> Any:
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(
            str(directory), local_files_only=True, trust_remote_code=False
        )
    except (OSError, ValueError, KeyError) as exc:
        raise EvaluationError(
            f"The tokenizer of the {role} in {directory} cannot be loaded: {exc}"
        ) from None


def _load_sequence_classifier(directory: Path, role: str, device: torch.device) -> Any:
    from transformers import AutoModelForSequenceClassification

    read_json(directory / "config.json", role)
    require_safetensors_weights(directory, "model", role=role)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            str(directory), use_safetensors=True, local_files_only=True, trust_remote_code=False
        )
    except (OSError, ValueError, KeyError) as exc:
        raise EvaluationError(f"The {role} in {directory} cannot be loaded: {exc}") from None
    return model.to(device).eval()


def _class_names(config: Any) -> list[str]:
    id2label = config.id2label or {}
    return [str(id2label.get(i, f"LABEL_{i}")) for i in range(config.num_labels)]


@register("transformers-sequence-classification")
class SequenceClassificationEvaluator:
    """A complete transformers classifier: config.json, model.safetensors and a tokenizer."""

    kind: str

    def predict(
        self,
        *,
        artefact_dir: Path,
        base_dir: Path | None,
        inputs: list[str],
        batch_size: int,
        device: torch.device,
        progress: ProgressCallback | None,
    ) -> Predictions:
        directory = require_dir(artefact_dir, "artefact", self.kind)
        model = _load_sequence_classifier(directory, "artefact", device)
        tokenizer = load_tokenizer(directory, "artefact")
        max_length = max_tokens(tokenizer, model.config)
        return predict_batched(
            inputs,
            classes=_class_names(model.config),
            batch_size=batch_size,
            progress=progress,
            logits_for=lambda batch: model(**tokenize(tokenizer, batch, max_length, device)).logits,
        )


@register("peft-adapter")
class PeftAdapterEvaluator:
    """A PEFT adapter (e.g. LoRA) over a sequence-classification base model.

    Labels come from the base model's config: the adapter only changes weights.
    """

    kind: str

    def predict(
        self,
        *,
        artefact_dir: Path,
        base_dir: Path | None,
        inputs: list[str],
        batch_size: int,
        device: torch.device,
        progress: ProgressCallback | None,
    ) -> Predictions:
        from peft import PeftModel

        adapter_dir = require_dir(artefact_dir, "adapter", self.kind)
        base = require_dir(base_dir, "base model", self.kind)
        adapter_config = read_json(adapter_dir / "adapter_config.json", "adapter")
        if adapter_config.get("task_type") not in (None, "SEQ_CLS"):
            raise EvaluationError(
                f"The adapter in {adapter_dir} was made for task {adapter_config['task_type']!r}; "
                f"kind {self.kind!r} evaluates sequence-classification adapters (SEQ_CLS)."
            )
        # peft reads adapter_model.safetensors whenever it is present, and only falls back to
        # the pickle file when it is not; requiring it here is what keeps pickle out.
        require_safetensors_weights(adapter_dir, "adapter_model", role="adapter")
        model = _load_sequence_classifier(base, "base model", device)
        try:
            model = PeftModel.from_pretrained(
                model, str(adapter_dir), is_trainable=False, local_files_only=True
            )
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise EvaluationError(
                f"The adapter in {adapter_dir} does not fit the base model in {base}: {exc}"
            ) from None
        model = model.to(device).eval()
        tokenizer = load_tokenizer(base, "base model")
        config = model.get_base_model().config
        max_length = max_tokens(tokenizer, config)
        return predict_batched(
            inputs,
            classes=_class_names(config),
            batch_size=batch_size,
            progress=progress,
            logits_for=lambda batch: model(**tokenize(tokenizer, batch, max_length, device)).logits,
        )
