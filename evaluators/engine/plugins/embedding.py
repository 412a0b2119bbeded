"""The `embedding-head` evaluator: a linear head over mean-pooled embeddings of a frozen base
model, and the helpers that write heads (`save_head`) and embed texts as it does (`encode`)."""

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from evaluators.engine import EvaluationError
from evaluators.engine.plugins.registry import (
    Predictions,
    ProgressCallback,
    batches,
    predict_batched,
    register,
)
from evaluators.engine.plugins.text import load_tokenizer, max_tokens, tokenize
from evaluators.engine.plugins.weights import read_json, require_dir, require_safetensors_weights

HEAD_WEIGHTS = "head.safetensors"
HEAD_CONFIG = "head_config.json"
POOLINGS = ("mean",)


@dataclass(frozen=True)
class HeadConfig:
    labels: list[str]
    pooling: str = "mean"
    normalize: bool = True
    max_length: int = 128

    def __post_init__(self) -> None:
        if not self.labels or len(set(self.labels)) != len(self.labels):
            raise EvaluationError(
                f"{HEAD_CONFIG}: labels must be a non-empty list of unique names."
            )
        if self.pooling not in POOLINGS:
            raise EvaluationError(
                f"{HEAD_CONFIG}: pooling {self.pooling!r} is not supported; use one of "
                f"{', '.join(POOLINGS)}."
            )
        if not isinstance(self.normalize, bool):
            raise EvaluationError(f"{HEAD_CONFIG}: normalize must be true or false.")
        if type(self.max_length) is not int or self.max_length < 1:
            raise EvaluationError(f"{HEAD_CONFIG}: max_length must be a positive integer.")


def save_head(
    out_dir: Path,
    *,
    weight: torch.Tensor,
    bias: torch.Tensor,
    labels: list[str],
    pooling: str = "mean",
    normalize: bool = True,
    max_length: int = 128,
) -> Path:
    """Write a linear head in the format the `embedding-head` evaluator reads.

    `head.safetensors` holds float32 `weight` [num_labels, hidden] and `bias` [num_labels];
    `head_config.json` holds labels (row order of `weight`), pooling, normalize, max_length
    and hidden_size. Returns out_dir.
    """
    config = HeadConfig(
        labels=[str(label) for label in labels],
        pooling=pooling,
        normalize=normalize,
        max_length=max_length,
    )
    weight = torch.as_tensor(weight).detach().to("cpu", torch.float32).contiguous()
    bias = torch.as_tensor(bias).detach().to("cpu", torch.float32).contiguous()
    _check_head_shapes(weight, bias, config, hidden_size=None)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({"weight": weight, "bias": bias}, str(out_dir / HEAD_WEIGHTS), {"format": "pt"})
    document = {
        "labels": config.labels,
        "pooling": config.pooling,
        "normalize": config.normalize,
        "max_length": config.max_length,
        "hidden_size": int(weight.shape[1]),
    }
    (out_dir / HEAD_CONFIG).write_text(json.dumps(document, indent=2) + "\n")
    return out_dir


def load_head(head_dir: Path) -> tuple[HeadConfig, torch.Tensor, torch.Tensor]:
    document = read_json(head_dir / HEAD_CONFIG, "embedding head")
    if not isinstance(document.get("labels"), list):
        raise EvaluationError(f"{HEAD_CONFIG} in {head_dir} must list the head's labels.")
    config = HeadConfig(
        labels=[str(label) for label in document["labels"]],
        pooling=document.get("pooling", "mean"),
        normalize=document.get("normalize", True),
        max_length=document.get("max_length", 128),
    )
    (weights_file,) = require_safetensors_weights(head_dir, "head", role="embedding head")
    try:
        tensors = load_file(str(weights_file))
    except SafetensorError as exc:
        raise EvaluationError(f"{HEAD_WEIGHTS} in {head_dir} cannot be read: {exc}") from None
    missing = {"weight", "bias"} - tensors.keys()
    if missing:
        raise EvaluationError(f"{HEAD_WEIGHTS} lacks tensor(s) {', '.join(sorted(missing))}.")
    weight, bias = tensors["weight"].float(), tensors["bias"].float()
    _check_head_shapes(weight, bias, config, hidden_size=document.get("hidden_size"))
    return config, weight, bias


def _check_head_shapes(
    weight: torch.Tensor, bias: torch.Tensor, config: HeadConfig, *, hidden_size: int | None
) -> None:
    n = len(config.labels)
    if weight.ndim != 2 or weight.shape[0] != n:
        raise EvaluationError(
            f"Head weight must have shape [num_labels={n}, hidden], not {list(weight.shape)}."
        )
    if bias.shape != (n,):
        raise EvaluationError(f"Head bias must have shape [{n}], not {list(bias.shape)}.")
    if hidden_size is not None and weight.shape[1] != hidden_size:
        raise EvaluationError(
            f"Head weight has {weight.shape[1]} columns but {HEAD_CONFIG} says hidden_size "
            f"{hidden_size}."
        )


class SentenceEncoder:
    """A feature-extraction base (AutoModel + tokenizer) with mean pooling over the mask."""

    def __init__(self, base_dir: Path, device: torch.device) -> None:
        from transformers import AutoModel

        base = require_dir(base_dir, "base model", "embedding-head")
        read_json(base / "config.json", "base model")
        require_safetensors_weights(base, "model", role="base model")
        try:
            model = AutoModel.from_pretrained(
                str(base), use_safetensors=True, local_files_only=True, trust_remote_code=False
            )
        except (OSError, ValueError, KeyError) as exc:
            raise EvaluationError(f"The base model in {base} cannot be loaded: {exc}") from None
        self.model = model.to(device).eval()
        self.tokenizer = load_tokenizer(base, "base model")
        self.device = device
        self.hidden_size = int(model.config.hidden_size)

    def embed(self, batch: list[str], *, max_length: int, normalize: bool) -> torch.Tensor:
        """Embeddings [len(batch), hidden] on the device; call under inference mode."""
        encoded = tokenize(
            self.tokenizer,
            batch,
            max_tokens(self.tokenizer, self.model.config, max_length),
            self.device,
        )
        hidden = self.model(**encoded).last_hidden_state
        mask = encoded["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return F.normalize(pooled, p=2, dim=1) if normalize else pooled


def encode(
    base_dir: Path,
    texts: list[str],
    batch_size: int,
    device: torch.device,
    *,
    normalize: bool = True,
    max_length: int = 128,
) -> torch.Tensor:
    """Embed texts exactly as the `embedding-head` evaluator does; float32 [n, hidden] on CPU.

    Training code uses this to fit heads on the same features the evaluator will see.
    """
    encoder = SentenceEncoder(Path(base_dir), device)
    with torch.inference_mode():
        chunks = [
            encoder.embed(batch, max_length=max_length, normalize=normalize)
            for batch in batches(list(texts), batch_size)
        ]
    if not chunks:
        return torch.zeros((0, encoder.hidden_size))
    return torch.cat(chunks).float().cpu()


@register("embedding-head")
class EmbeddingHeadEvaluator:
    """A linear head (artefact) over pooled embeddings of a frozen base model (base_dir)."""

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
        head_dir = require_dir(artefact_dir, "embedding head", self.kind)
        config, weight, bias = load_head(head_dir)
        encoder = SentenceEncoder(require_dir(base_dir, "base model", self.kind), device)
        if weight.shape[1] != encoder.hidden_size:
            raise EvaluationError(
                f"The head expects {weight.shape[1]}-dimensional embeddings but the base model "
                f"in {base_dir} produces {encoder.hidden_size}; was it trained on another base?"
            )
        weight, bias = weight.to(device), bias.to(device)

        def logits_for(batch: list[str]) -> torch.Tensor:
            embeddings = encoder.embed(
                batch, max_length=config.max_length, normalize=config.normalize
            )
            return embeddings.float() @ weight.T + bias

        return predict_batched(
            inputs,
            classes=config.labels,
            batch_size=batch_size,
            progress=progress,
            logits_for=logits_for,
        )
