"""Evaluator plug-ins: load an artefact from local safetensors files and predict in batches.

`registry` holds the contract every evaluator meets and the kinds registered; `weights` finds
and checks weight files with the artefact library's safetensors reader before transformers,
peft or safetensors touch a tensor; `text`, `embedding` and `tabular` are the evaluators, each
registering its kind when imported here.
"""

from evaluators.engine.plugins.embedding import (
    HEAD_CONFIG,
    HEAD_WEIGHTS,
    EmbeddingHeadEvaluator,
    HeadConfig,
    SentenceEncoder,
    encode,
    load_head,
    save_head,
)
from evaluators.engine.plugins.registry import (
    Evaluator,
    Predictions,
    ProgressCallback,
    get_evaluator,
    known_kinds,
    register,
)
from evaluators.engine.plugins.tabular import (
    TABULAR_CONFIG,
    TabularConfig,
    TabularLinearEvaluator,
    save_tabular_linear,
)
from evaluators.engine.plugins.text import PeftAdapterEvaluator, SequenceClassificationEvaluator
from evaluators.engine.plugins.weights import require_safetensors_weights

__all__ = [
    "HEAD_CONFIG",
    "HEAD_WEIGHTS",
    "TABULAR_CONFIG",
    "EmbeddingHeadEvaluator",
    "Evaluator",
    "HeadConfig",
    "PeftAdapterEvaluator",
    "Predictions",
    "ProgressCallback",
    "SentenceEncoder",
    "SequenceClassificationEvaluator",
    "TabularConfig",
    "TabularLinearEvaluator",
    "encode",
    "get_evaluator",
    "known_kinds",
    "load_head",
    "register",
    "require_safetensors_weights",
    "save_head",
    "save_tabular_linear",
]
