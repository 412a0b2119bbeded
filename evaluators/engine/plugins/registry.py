"""The evaluator contract, the registry of evaluator kinds, and the batched loop they share."""

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np
import torch

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
E = TypeVar("E", bound=type[Evaluator])
T = TypeVar("T")


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


def batches(items: list[T], batch_size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), batch_size):
        yield items[start : start + batch_size]


def predict_batched(
    inputs: list[T],
    *,
    classes: list[str],
    batch_size: int,
    progress: ProgressCallback | None,
    logits_for: Callable[[list[T]], torch.Tensor],
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
        for batch in batches(inputs, batch_size):
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
