"""Finding and checking weight files before any library loads them.

Only `.safetensors` weights are accepted, and every header goes through the artefact library's
one reader (`pedigree_client.artefacts.inspect_safetensors`), the reader registration uses, so
whatever registers also passes here and pickle is refused with the same message.
"""

import json
from pathlib import Path
from typing import Any

from evaluators.engine import EvaluationError
from pedigree_client.artefacts import ArtefactError, inspect_safetensors, pickle_refusal


def require_safetensors_weights(directory: Path, stem: str, *, role: str) -> list[Path]:
    """Find `<stem>.safetensors` (or its shards) in a directory and validate every header.

    Only safetensors are accepted; when the directory offers nothing but pickle-based
    weights (.bin, .pt, .joblib, ...) the message says so, since those can run code on load.
    """
    single = directory / f"{stem}.safetensors"
    index = directory / f"{stem}.safetensors.index.json"
    if single.is_file():
        files = [single]
    elif index.is_file():
        files = _shards_from_index(index, directory)
    else:
        refusals = {
            path.name: refusal
            for path in sorted(directory.iterdir())
            if (refusal := pickle_refusal(path.name, label=path.name)) is not None
        }
        if refusals:
            first = next(iter(refusals.values()))
            raise EvaluationError(
                f"The {role} in {directory} only has pickle-based weights "
                f"({', '.join(refusals)}): {first.message}"
            )
        raise EvaluationError(f"The {role} in {directory} has no {single.name}.")
    for file in files:
        try:
            inspect_safetensors(file)
        except ArtefactError as error:
            raise EvaluationError(error.message) from None
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


def require_dir(path: Path | None, role: str, kind: str) -> Path:
    if path is None:
        raise EvaluationError(f"Evaluator kind {kind!r} needs a {role} directory.")
    if not path.is_dir():
        raise EvaluationError(f"The {role} directory {path} does not exist.")
    return path


def read_json(path: Path, role: str) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except FileNotFoundError:
        raise EvaluationError(f"The {role} has no {path.name} (looked in {path.parent}).") from None
    except (OSError, ValueError) as exc:
        raise EvaluationError(f"{path.name} of the {role} cannot be read: {exc}.") from None
    if not isinstance(value, dict):
        raise EvaluationError(f"{path.name} of the {role} must hold a JSON object.")
    return value
