"""How an imported model was made from its declared bases, as the Hub itself infers it.

A card's `base_model_relation` is taken as declared. Otherwise the relation is inferred from the
card and the files, the way the Hub's model tree does, and recorded with its evidence so that
compliance can confirm it. Signs that contradict each other leave the relation `unknown`.
"""

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from registry.hub.cards import CardInfo
from registry.hub.errors import HubError

# The values the Hub accepts in `base_model_relation`.
HUB_RELATIONS = ("adapter", "merge", "quantized", "finetune")
UNKNOWN = "unknown"
_QUANTIZED_SUFFIXES = (".gguf", ".ggml")
_QUANTIZED_NAME_MARKS = ("gptq", "awq", "exl2")
_MERGE_CONFIGS = ("mergekit_config.yml", "mergekit_config.yaml")


@dataclass(frozen=True)
class RelationGuess:
    relation: str
    inferred: bool
    evidence: list[str]


def infer_relation(
    card: CardInfo,
    *,
    repo_id: str,
    files: list[str],
    has_adapter_config: bool,
    quantization_method: str | None,
) -> RelationGuess:
    """The relation between a model and its declared bases (`card.base_models`)."""
    declared = card.base_model_relation
    if declared is not None:
        if declared not in HUB_RELATIONS:
            raise HubError(
                f"The model card of {repo_id} has `base_model_relation: {declared}`; the Hub "
                f"knows {', '.join(HUB_RELATIONS)}: use one of them or leave it out.",
                code="card_invalid",
                field="base_model_relation",
            )
        said = f"the card declares base_model_relation: {declared}"
        if len(card.base_models) > 1 and declared != "merge":
            # Only a merge has several parents: the card contradicts itself.
            return RelationGuess(
                UNKNOWN, True, [said, f"but names {len(card.base_models)} base models"]
            )
        return RelationGuess(declared, False, [said])
    signs: dict[str, list[str]] = {}
    if has_adapter_config:
        signs.setdefault("adapter", []).append("adapter_config.json is in the repository")
    if card.library_name == "peft":
        signs.setdefault("adapter", []).append("the card declares library_name: peft")
    names = [PurePosixPath(path).name.lower() for path in files]
    quantized_files = [
        path
        for path, name in zip(files, names, strict=True)
        if name.endswith(_QUANTIZED_SUFFIXES) or any(mark in name for mark in _QUANTIZED_NAME_MARKS)
    ]
    if quantized_files:
        signs.setdefault("quantized", []).append(
            f"quantized weight files: {', '.join(sorted(quantized_files)[:3])}"
        )
    if quantization_method:
        signs.setdefault("quantized", []).append(
            f"config.json has a quantization_config ({quantization_method})"
        )
    if isinstance(card.metadata.get("quantized_by"), str):
        signs.setdefault("quantized", []).append(
            f"the card declares quantized_by: {card.metadata['quantized_by']}"
        )
    if len(card.base_models) > 1:
        signs.setdefault("merge", []).append(
            f"the card declares {len(card.base_models)} base models"
        )
    merge_configs = [name for name in names if name in _MERGE_CONFIGS]
    if merge_configs:
        signs.setdefault("merge", []).append(f"{merge_configs[0]} is in the repository")
    if len(signs) > 1:
        evidence = [f"{relation}: {why}" for relation, whys in signs.items() for why in whys]
        return RelationGuess(UNKNOWN, True, ["the signs contradict each other", *evidence])
    if signs:
        ((relation, evidence),) = signs.items()
        return RelationGuess(relation, True, evidence)
    return RelationGuess(
        "finetune",
        True,
        ["a full checkpoint with no sign of an adapter, a quantization or a merge"],
    )


def quantization_method_of(config: Any) -> str | None:
    """`quantization_config.quant_method` of a parsed config.json, if it has one."""
    if not isinstance(config, dict):
        return None
    quantization = config.get("quantization_config")
    if not isinstance(quantization, dict):
        return None
    method = quantization.get("quant_method")
    return str(method)[:64] if method else "unspecified method"
