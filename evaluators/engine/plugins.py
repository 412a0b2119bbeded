"""Evaluator plug-ins: load an artefact from local safetensors files and predict in batches.

Weights are only ever read through safetensors. Each loader first checks that the weight
files exist as `.safetensors`, refuses pickle-based formats, and parses and validates every
safetensors header before transformers, peft or safetensors touch a tensor. Loading is
local-only (`local_files_only=True`, never remote code), so nothing reaches the network.
"""

from __future__ import annotations

import itertools
import json
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch
import torch.nn.functional as F
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from evaluators.engine import EvaluationError

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class Predictions:
    """Model output for a list of inputs.

    `classes` lists every label the model can emit, in the order of the probability
    columns; `labels[i]` is the predicted class of input i.
    """

    classes: list[str]
    labels: list[str]
    probabilities: np.ndarray | None
    # Seconds spent in the batched loop (tokenising, forward passes, copying back).
    inference_s: float


class Evaluator(Protocol):
    kind: str

    def predict(
        self,
        *,
        artefact_dir: Path,
        base_dir: Path | None,
        inputs: list[Any],  # texts, or {feature: value} rows for tabular kinds
        batch_size: int,
        device: torch.device,
        progress: ProgressCallback | None,
    ) -> Predictions: ...


_EVALUATORS: dict[str, Evaluator] = {}
E = TypeVar("E", bound=type)


def register(kind: str) -> Callable[[E], E]:
    """Class decorator: make the (argument-less) evaluator class available as `kind`."""

    def decorate(cls: E) -> E:
        if kind in _EVALUATORS:
            raise ValueError(f"An evaluator for kind {kind!r} is already registered.")
        cls.kind = kind
        _EVALUATORS[kind] = cls()
        return cls

    return decorate


def known_kinds() -> list[str]:
    return sorted(_EVALUATORS)


def get_evaluator(kind: str) -> Evaluator:
    try:
        return _EVALUATORS[kind]
    except KeyError:
        raise EvaluationError(
            f"Unknown evaluator kind {kind!r}; known kinds: {', '.join(known_kinds())}."
        ) from None


# --- weight files --------------------------------------------------------------------------

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
# Bytes per element for every dtype the safetensors format defines.
_DTYPE_SIZES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "F8_E8M0": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}
_MAX_HEADER_BYTES = 100 * 1024 * 1024


def validate_safetensors_header(path: Path) -> dict[str, Any]:
    """Parse a safetensors header and check it describes the file exactly; return it.

    Checks: the 8-byte length prefix fits the file, the header is a JSON object, every tensor
    has a known dtype, a non-negative integer shape and data offsets that lie inside the data
    section, do not overlap, and match the shape's byte size.
    """
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            prefix = fh.read(8)
            if len(prefix) < 8:
                raise EvaluationError(f"{path.name} is not a safetensors file (too short).")
            (header_len,) = struct.unpack("<Q", prefix)
            if header_len > min(_MAX_HEADER_BYTES, size - 8):
                raise EvaluationError(
                    f"{path.name} is not a valid safetensors file (header length {header_len} "
                    f"does not fit a {size}-byte file)."
                )
            raw_header = fh.read(header_len)
    except OSError as exc:
        raise EvaluationError(f"Cannot read {path}: {exc.strerror}.") from None
    try:
        header = json.loads(raw_header)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise EvaluationError(f"{path.name} has a corrupt safetensors header.") from None
    if not isinstance(header, dict):
        raise EvaluationError(f"{path.name} has a corrupt safetensors header.")

    data_len = size - 8 - header_len
    spans = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        problem = _tensor_entry_problem(info, data_len)
        if problem:
            raise EvaluationError(f"{path.name}: tensor {name!r} {problem}.")
        spans.append(tuple(info["data_offsets"]))
    spans.sort()
    for (_, end), (begin, _) in itertools.pairwise(spans):
        if begin < end:
            raise EvaluationError(f"{path.name}: tensors overlap in the data section.")
    return header


def _tensor_entry_problem(info: Any, data_len: int) -> str | None:
    if not isinstance(info, dict):
        return "has no description"
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if dtype not in _DTYPE_SIZES:
        return f"has unknown dtype {dtype!r}"
    if not (isinstance(shape, list) and all(type(d) is int and d >= 0 for d in shape)):
        return f"has an invalid shape {shape!r}"
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(type(o) is int for o in offsets)
        and 0 <= offsets[0] <= offsets[1] <= data_len
    ):
        return f"has data offsets {offsets!r} outside the file"
    if offsets[1] - offsets[0] != int(np.prod(shape, dtype=np.int64)) * _DTYPE_SIZES[dtype]:
        return "has a byte length that does not match its shape and dtype"
    return None


def require_safetensors_weights(directory: Path, stem: str, *, role: str) -> list[Path]:
    """Find `<stem>.safetensors` (or its shards) in a directory and validate every header.

    Only safetensors are accepted; when the directory offers nothing but pickle-based
    weights (.bin, .pt, ...) the message says so, since those can run code on load.
    """
    single = directory / f"{stem}.safetensors"
    index = directory / f"{stem}.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        files = _shards_from_index(index, directory)
    else:
        pickles = sorted(p.name for p in directory.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise EvaluationError(
                f"The {role} in {directory} only has pickle-based weights "
                f"({', '.join(pickles)}), which are refused because loading them can run "
                f"arbitrary code. Convert them to {single.name} (safetensors) and upload again."
            )
        raise EvaluationError(f"The {role} in {directory} has no {single.name}.")
    for file in files:
        validate_safetensors_header(file)
    return files


def _shards_from_index(index: Path, directory: Path) -> list[Path]:
    try:
        weight_map = json.loads(index.read_text())["weight_map"]
        names = sorted(set(weight_map.values()))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        raise EvaluationError(f"{index.name} in {directory} is not a valid shard index.") from None
    shards = []
    for name in names:
        shard = (directory / name).resolve()
        if shard.parent != directory.resolve() or shard.suffix != ".safetensors":
            raise EvaluationError(f"{index.name} names an unexpected shard file {name!r}.")
        if not shard.is_file():
            raise EvaluationError(f"{index.name} names shard {name!r}, which is missing.")
        shards.append(shard)
    return shards


def _require_dir(path: Path | None, role: str, kind: str) -> Path:
    if path is None:
        raise EvaluationError(f"Evaluator kind {kind!r} needs a {role} directory.")
    if not path.is_dir():
        raise EvaluationError(f"The {role} directory {path} does not exist.")
    return path


def _read_json(path: Path, role: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise EvaluationError(f"The {role} has no {path.name} (looked in {path.parent}).") from None
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"{path.name} of the {role} cannot be read: {exc}.") from None
    if not isinstance(value, dict):
        raise EvaluationError(f"{path.name} of the {role} must hold a JSON object.")
    return value


# --- shared batching -----------------------------------------------------------------------


def _batches(items: list[str], batch_size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


def _predict_batched(
    inputs: list[str],
    *,
    classes: list[str],
    batch_size: int,
    progress: ProgressCallback | None,
    logits_for: Callable[[list[str]], torch.Tensor],
) -> Predictions:
    """Run `logits_for` over consecutive batches under inference mode.

    Logits stay on the device until the end, so the host waits for the accelerator once
    rather than after every batch.
    """
    if batch_size < 1:
        raise EvaluationError(f"batch_size must be at least 1, not {batch_size}.")
    started = time.perf_counter()
    chunks: list[torch.Tensor] = []
    done = 0
    with torch.inference_mode():
        for batch in _batches(inputs, batch_size):
            chunks.append(logits_for(batch))
            done += len(batch)
            if progress is not None:
                progress(done, len(inputs))
        if chunks:
            logits = torch.cat(chunks).float()
            probabilities = torch.softmax(logits, dim=-1).cpu().numpy().astype(np.float64)
            predicted = logits.argmax(dim=-1).cpu().tolist()
        else:
            probabilities = np.zeros((0, len(classes)))
            predicted = []
    return Predictions(
        classes=list(classes),
        labels=[classes[i] for i in predicted],
        probabilities=probabilities,
        inference_s=time.perf_counter() - started,
    )


def _max_length(tokenizer: Any, config: Any, requested: int | None = None) -> int:
    limits = [
        value
        for value in (requested, getattr(config, "max_position_embeddings", None))
        if isinstance(value, int) and value > 0
    ]
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and 0 < model_max < 1_000_000:
        limits.append(model_max)
    return min(limits) if limits else 512


def _tokenize(tokenizer: Any, batch: list[str], max_length: int, device: torch.device) -> Any:
    encoded = tokenizer(
        batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    return {name: tensor.to(device, non_blocking=True) for name, tensor in encoded.items()}


def _load_tokenizer(directory: Path, role: str) -> Any:
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

    _read_json(directory / "config.json", role)
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


# --- transformers-sequence-classification --------------------------------------------------


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
        directory = _require_dir(artefact_dir, "artefact", self.kind)
        model = _load_sequence_classifier(directory, "artefact", device)
        tokenizer = _load_tokenizer(directory, "artefact")
        max_length = _max_length(tokenizer, model.config)
        return _predict_batched(
            inputs,
            classes=_class_names(model.config),
            batch_size=batch_size,
            progress=progress,
            logits_for=lambda batch: (
                model(**_tokenize(tokenizer, batch, max_length, device)).logits
            ),
        )


# --- peft-adapter --------------------------------------------------------------------------


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

        adapter_dir = _require_dir(artefact_dir, "adapter", self.kind)
        base = _require_dir(base_dir, "base model", self.kind)
        adapter_config = _read_json(adapter_dir / "adapter_config.json", "adapter")
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
        tokenizer = _load_tokenizer(base, "base model")
        config = model.get_base_model().config
        max_length = _max_length(tokenizer, config)
        return _predict_batched(
            inputs,
            classes=_class_names(config),
            batch_size=batch_size,
            progress=progress,
            logits_for=lambda batch: (
                model(**_tokenize(tokenizer, batch, max_length, device)).logits
            ),
        )


# --- embedding-head ------------------------------------------------------------------------

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
    document = _read_json(head_dir / HEAD_CONFIG, "embedding head")
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

        base = _require_dir(base_dir, "base model", "embedding-head")
        _read_json(base / "config.json", "base model")
        require_safetensors_weights(base, "model", role="base model")
        try:
            model = AutoModel.from_pretrained(
                str(base), use_safetensors=True, local_files_only=True, trust_remote_code=False
            )
        except (OSError, ValueError, KeyError) as exc:
            raise EvaluationError(f"The base model in {base} cannot be loaded: {exc}") from None
        self.model = model.to(device).eval()
        self.tokenizer = _load_tokenizer(base, "base model")
        self.device = device
        self.hidden_size = int(model.config.hidden_size)

    def embed(self, batch: list[str], *, max_length: int, normalize: bool) -> torch.Tensor:
        """Embeddings [len(batch), hidden] on the device; call under inference mode."""
        encoded = _tokenize(
            self.tokenizer,
            batch,
            _max_length(self.tokenizer, self.model.config, max_length),
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
            for batch in _batches(list(texts), batch_size)
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
        head_dir = _require_dir(artefact_dir, "embedding head", self.kind)
        config, weight, bias = load_head(head_dir)
        encoder = SentenceEncoder(_require_dir(base_dir, "base model", self.kind), device)
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

        return _predict_batched(
            inputs,
            classes=config.labels,
            batch_size=batch_size,
            progress=progress,
            logits_for=logits_for,
        )


# --- tabular-linear ------------------------------------------------------------------------

TABULAR_CONFIG = "tabular_config.json"


@dataclass(frozen=True)
class TabularConfig:
    features: list[str]
    labels: list[str]
    mean: list[float]
    scale: list[float]

    @classmethod
    def parse(cls, document: dict[str, Any]) -> TabularConfig:
        features, labels = document.get("features"), document.get("labels")
        for name, names in (("features", features), ("labels", labels)):
            if (
                not isinstance(names, list)
                or not names
                or not all(isinstance(item, str) and item for item in names)
                or len(set(names)) != len(names)
            ):
                raise EvaluationError(
                    f"{TABULAR_CONFIG}: {name} must be a non-empty list of unique names."
                )
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
        directory = _require_dir(artefact_dir, "artefact", self.kind)
        config = TabularConfig.parse(_read_json(directory / TABULAR_CONFIG, "tabular model"))
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

        return _predict_batched(
            inputs,
            classes=config.labels,
            batch_size=batch_size,
            progress=progress,
            logits_for=logits_for,
        )
