"""JSON Schemas for training-run hyperparameters, one per method.

Each schema types the keys it knows and requires the ones that define the method (a LoRA run
without a rank is not a LoRA record). Unknown keys are kept: training code evolves faster
than any schema, and an unrecognised setting is still evidence worth storing.
"""

from typing import Any

from jsonschema import Draft202012Validator

from lineage.models import Method, Relation

_POSITIVE = {"type": "number", "exclusiveMinimum": 0}
_NON_NEGATIVE = {"type": "number", "minimum": 0}
_FRACTION = {"type": "number", "minimum": 0, "maximum": 1}
_COUNT = {"type": "integer", "minimum": 1}
_NAMES = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}

# Settings shared by every gradient-based method.
_TRAINING: dict[str, Any] = {
    "learning_rate": _POSITIVE,
    "epochs": _POSITIVE,
    "max_steps": _COUNT,
    "batch_size": _COUNT,
    "gradient_accumulation_steps": _COUNT,
    "seed": {"type": "integer"},
    "optimizer": {"type": "string", "minLength": 1},
    "weight_decay": _NON_NEGATIVE,
    "warmup_steps": {"type": "integer", "minimum": 0},
    "warmup_ratio": _FRACTION,
    "lr_scheduler": {"type": "string", "minLength": 1},
    "precision": {"type": "string", "minLength": 1},
    "max_seq_length": _COUNT,
    "dropout": _FRACTION,
    "loss": {"type": "string", "minLength": 1},
}


def _schema(title: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": True,
    }


HYPERPARAMETER_SCHEMAS: dict[str, dict[str, Any]] = {
    Method.FULL_FINETUNE: _schema("Full fine-tune", _TRAINING, ["learning_rate"]),
    Method.PARTIAL_FINETUNE: _schema(
        "Partial fine-tune",
        {**_TRAINING, "frozen_layers": _NAMES},
        ["learning_rate", "frozen_layers"],
    ),
    Method.LORA: _schema(
        "LoRA",
        {
            **_TRAINING,
            "rank": _COUNT,
            "alpha": _POSITIVE,
            "target_modules": _NAMES,
            "lora_dropout": _FRACTION,
            "bias": {"enum": ["none", "all", "lora_only"]},
            # QLoRA: the precision the frozen base was loaded in (e.g. "nf4").
            "base_quantization": {"type": "string", "minLength": 1},
        },
        ["rank", "alpha", "target_modules"],
    ),
    Method.FEATURE_EXTRACTION: _schema(
        "Feature extraction",
        {
            **_TRAINING,
            "head": {"type": "string", "minLength": 1},
            "pooling": {"type": "string", "minLength": 1},
            "normalize": {"type": "boolean"},
            "max_length": _COUNT,
        },
        ["head"],
    ),
    Method.QUANTIZATION: _schema(
        "Quantization",
        {
            "scheme": {"type": "string", "minLength": 1},
            "bits": {"type": "integer", "minimum": 1, "maximum": 64},
            "group_size": _COUNT,
            "symmetric": {"type": "boolean"},
            "calibration_samples": {"type": "integer", "minimum": 0},
        },
        ["scheme"],
    ),
    Method.MERGE: _schema(
        "Merge",
        {
            "merge_method": {"type": "string", "minLength": 1},
            "weights": {
                "oneOf": [
                    {"type": "array", "items": {"type": "number"}, "minItems": 2},
                    {"type": "object", "additionalProperties": {"type": "number"}},
                ]
            },
            "density": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "normalize": {"type": "boolean"},
        },
        ["merge_method"],
    ),
    Method.DISTILLATION: _schema(
        "Distillation",
        {**_TRAINING, "temperature": _POSITIVE, "alpha": _FRACTION},
        ["temperature"],
    ),
    Method.CONTINUED_PRETRAINING: _schema(
        "Continued pre-training",
        {
            **_TRAINING,
            "objective": {"type": "string", "minLength": 1},
            "tokens": {"type": "integer", "minimum": 0},
        },
        ["learning_rate"],
    ),
}

FRAMEWORK_VERSIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "propertyNames": {"pattern": r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$"},
    "additionalProperties": {"type": "string", "minLength": 1, "maxLength": 64},
    "maxProperties": 64,
}

# Which methods can produce a child by each relation (decided by the child's "main" relation:
# merge or distillation when present, otherwise its single parent's relation).
METHODS_FOR_RELATION: dict[str, frozenset[str]] = {
    Relation.FINETUNE: frozenset(
        {Method.FULL_FINETUNE, Method.PARTIAL_FINETUNE, Method.LORA}  # LoRA merged into weights
    ),
    Relation.ADAPTER: frozenset({Method.LORA, Method.FEATURE_EXTRACTION}),
    Relation.QUANTIZED: frozenset({Method.QUANTIZATION}),
    Relation.MERGE: frozenset({Method.MERGE}),
    Relation.DISTILLATION: frozenset({Method.DISTILLATION}),
    Relation.CONTINUED_PRETRAINING: frozenset({Method.CONTINUED_PRETRAINING}),
    # Any method fits a relation nobody knows yet; resolving the relation checks it again.
    Relation.UNKNOWN: frozenset(Method),
}

_VALIDATORS = {
    method: Draft202012Validator(schema) for method, schema in HYPERPARAMETER_SCHEMAS.items()
}
_FRAMEWORKS_VALIDATOR = Draft202012Validator(FRAMEWORK_VERSIONS_SCHEMA)


def _problems(validator: Draft202012Validator, value: Any, field: str) -> dict[str, list[str]]:
    problems: dict[str, list[str]] = {}
    for error in sorted(validator.iter_errors(value), key=lambda e: list(e.path)):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.path)
        problems.setdefault(f"{field}{path}", []).append(error.message)
    return problems


def hyperparameter_problems(method: str, hyperparameters: Any, field: str) -> dict[str, list[str]]:
    """Field name → messages for every schema violation (empty when valid)."""
    return _problems(_VALIDATORS[method], hyperparameters, field)


def framework_version_problems(framework_versions: Any, field: str) -> dict[str, list[str]]:
    return _problems(_FRAMEWORKS_VALIDATOR, framework_versions, field)
