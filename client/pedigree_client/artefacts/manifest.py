"""Artefact manifests: every file of an artefact classified, validated and hashed, the shard
index and adapter config checked against the weights, and one content digest over it all."""

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pedigree_client.artefacts.errors import ArtefactError, brief
from pedigree_client.artefacts.gguf import GgufInfo, inspect_gguf
from pedigree_client.artefacts.hashing import hash_file
from pedigree_client.artefacts.paths import list_files, locate
from pedigree_client.artefacts.reading import open_for_reading, parse_json
from pedigree_client.artefacts.safetensors import (
    CONVERT_HINT,
    SafetensorsInfo,
    inspect_safetensors,
)

# Index and adapter config files are small; the cap stops a hostile one exhausting memory.
MAX_JSON_FILE_SIZE = 100_000_000

FileKind = Literal[
    "weights", "gguf", "index", "adapter_config", "config", "tokenizer", "card", "other"
]
# "gguf": GGUF weight files only (a llama.cpp quantization), no safetensors.
ArtefactFormat = Literal["full", "sharded", "adapter", "gguf", "other"]
# (relative path of the file being hashed, bytes hashed so far, bytes to hash in all).
ArtefactProgress = Callable[[str, int, int], None]

_TOKENIZER_NAMES = frozenset(
    {"vocab.txt", "vocab.json", "merges.txt", "special_tokens_map.json", "added_tokens.json"}
)
_ADAPTER_CONFIG_NAME = "adapter_config.json"
_INDEX_SUFFIX = ".safetensors.index.json"
_ADAPTER_FIELDS: dict[str, tuple[type, ...]] = {
    "base_model_name_or_path": (str,),
    "peft_type": (str,),
    "r": (int,),
    "lora_alpha": (int, float),
    "target_modules": (str, list),
}


@dataclass(frozen=True)
class ArtefactFile:
    path: str
    size: int
    sha256: str
    kind: FileKind
    safetensors: SafetensorsInfo | None
    gguf: GgufInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        data = {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "kind": self.kind,
            "safetensors": self.safetensors.to_dict() if self.safetensors else None,
        }
        if self.gguf is not None:
            data["gguf"] = self.gguf.to_dict()
        return data


@dataclass(frozen=True)
class ArtefactManifest:
    """The content-addressed description of an artefact.

    `digest` is the SHA-256 (hex) of the UTF-8 text made of one line
    f"{path}\\t{sha256}\\t{size}\\n" per file, lines sorted. It depends only on relative paths
    and contents, never on timestamps or walk order; file names holding control characters are
    refused so the lines cannot be forged.
    """

    files: tuple[ArtefactFile, ...]
    digest: str
    total_size: int
    total_parameters: int
    parameters_by_dtype: dict[str, int]
    format: ArtefactFormat
    adapter: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "format": self.format,
            "total_size": self.total_size,
            "total_parameters": self.total_parameters,
            "parameters_by_dtype": dict(self.parameters_by_dtype),
            "adapter": dict(self.adapter) if self.adapter is not None else None,
            "files": [file.to_dict() for file in self.files],
        }


def inspect_artefact(
    path: Path,
    *,
    roots: Sequence[Path] | None = None,
    progress: ArtefactProgress | None = None,
    exclude: Callable[[str], bool] | None = None,
    allow_gguf: bool = False,
) -> ArtefactManifest:
    """Validate and hash an artefact (a folder, or a single file) and describe it.

    GGUF files (`.gguf`) always have their header validated; they stand in for safetensors
    weights only with `allow_gguf` (an upstream GGUF quantization imported from the Hub).

    Hidden files and folders (`.git`, `.cache`, ...) are skipped and not part of the digest,
    and so are files whose relative path `exclude` returns True for.
    Every file, after resolving symlinks, must lie inside `roots` (default: inside `path`
    itself). All headers and configs are validated before any file is hashed, so bad input
    fails fast. `progress(relpath, bytes_done, bytes_total)` reports hashing across the whole
    artefact, `bytes_done` and `bytes_total` counting every file.
    """
    path = Path(path)
    listing = list_files(path, exclude=exclude)
    boundaries = [Path(root).resolve() for root in roots] if roots else [path.resolve()]
    # From here on only the resolved paths are opened, the ones checked against the roots.
    located = {relpath: locate(file, relpath, boundaries) for relpath, file in listing}

    kinds = {relpath: classify_file(PurePosixPath(relpath).name) for relpath in located}
    weights = {
        relpath: inspect_safetensors(file, label=relpath)
        for relpath, (file, _) in located.items()
        if kinds[relpath] == "weights"
    }
    ggufs = {
        relpath: inspect_gguf(file, label=relpath)
        for relpath, (file, _) in located.items()
        if kinds[relpath] == "gguf"
    }
    if not weights and not (allow_gguf and ggufs):
        raise ArtefactError(
            f"{path.name or path} holds no .safetensors"
            + (" or .gguf" if allow_gguf else "")
            + f" weights; add the model weights in safetensors format ({CONVERT_HINT}).",
            code="no_weights",
        )
    adapter = None
    for relpath, (file, _) in located.items():
        if kinds[relpath] == "index":
            _check_index(relpath, _load_json(file, label=relpath, code="index_invalid"), weights)
        elif relpath == _ADAPTER_CONFIG_NAME:
            adapter = read_adapter_config(
                _load_json(file, label=relpath, code="adapter_config_invalid")
            )

    total_size = sum(size for _, size in located.values())
    files = []
    hashed_before = 0
    for relpath, (file, size) in located.items():
        digest, hashed = hash_file(
            file, progress=_file_progress(progress, relpath, hashed_before, total_size)
        )
        if hashed != size:
            raise ArtefactError(
                f"{relpath} changed size while it was being read; wait until it is fully "
                "written, then register it again.",
                code="file_changed",
            )
        hashed_before += hashed
        files.append(
            ArtefactFile(
                path=relpath,
                size=hashed,
                sha256=digest,
                kind=kinds[relpath],
                safetensors=weights.get(relpath),
                gguf=ggufs.get(relpath),
            )
        )
    return manifest_from_files(files, adapter=adapter)


def manifest_from_files(
    files: Sequence[ArtefactFile], *, adapter: dict[str, Any] | None
) -> ArtefactManifest:
    """Assemble a manifest from files already validated and hashed (locally, or from the
    metadata a hub publishes), computing the digest, totals and format."""
    files = sorted(files, key=lambda file: file.path)
    by_dtype: dict[str, int] = {}
    has_safetensors = any(file.safetensors is not None for file in files)
    for file in files:
        # A repository shipping both counts its safetensors weights; GGUF-only ones their GGUF.
        info = file.safetensors or (None if has_safetensors else file.gguf)
        if info is None:
            continue
        for dtype, count in info.parameters_by_dtype.items():
            by_dtype[dtype] = by_dtype.get(dtype, 0) + count
    kinds = {file.path: file.kind for file in files}
    return ArtefactManifest(
        files=tuple(files),
        digest=_manifest_digest(files),
        total_size=sum(file.size for file in files),
        total_parameters=sum(by_dtype.values()),
        parameters_by_dtype=dict(sorted(by_dtype.items())),
        format=_artefact_format(
            kinds,
            weight_count=sum(kind == "weights" for kind in kinds.values()),
            has_adapter=adapter is not None,
        ),
        adapter=adapter,
    )


def _load_json(path: Path, *, label: str, code: str) -> Any:
    with open_for_reading(path, label=label) as stream:
        data = stream.read(MAX_JSON_FILE_SIZE + 1)
    if len(data) > MAX_JSON_FILE_SIZE:
        raise ArtefactError(
            f"{label} is larger than {MAX_JSON_FILE_SIZE} bytes; it cannot be a real {label}.",
            code=code,
        )
    try:
        return parse_json(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ArtefactError(
            f"{label} is not valid UTF-8 JSON ({error}); fix or regenerate it.", code=code
        ) from None


def _check_index(relpath: str, index: Any, weights: dict[str, SafetensorsInfo]) -> None:
    """The index must name exactly the shards beside it and the tensors each really holds."""
    weight_map = index.get("weight_map") if isinstance(index, dict) else None
    if not isinstance(weight_map, dict) or not all(
        isinstance(shard, str) for shard in weight_map.values()
    ):
        raise ArtefactError(
            f"{relpath} must be an object whose weight_map maps tensor names to shard file "
            "names; regenerate it with `save_pretrained(..., safe_serialization=True)`.",
            code="index_invalid",
        )
    folder = PurePosixPath(relpath).parent
    tensors_by_shard: dict[str, set[str]] = {}
    for tensor, shard in weight_map.items():
        tensors_by_shard.setdefault((folder / shard).as_posix(), set()).add(tensor)

    missing = sorted(set(tensors_by_shard) - set(weights))
    if missing:
        raise ArtefactError(
            f"{relpath} lists shards that are not in the artefact: "
            f"{', '.join(brief(shard) for shard in missing[:5])}; "
            "add them or regenerate the index.",
            code="index_missing_shard",
        )
    unlisted = sorted(
        shard
        for shard in weights
        if PurePosixPath(shard).parent == folder and shard not in tensors_by_shard
    )
    if unlisted:
        raise ArtefactError(
            f"{relpath} does not list these shards beside it: {', '.join(unlisted[:5])}; "
            "remove them or regenerate the index.",
            code="index_unlisted_shard",
        )
    for shard, listed in sorted(tensors_by_shard.items()):
        actual = weights[shard].tensor_names
        if listed != actual:
            example = sorted(listed ^ actual)[0]
            raise ArtefactError(
                f"{relpath} and {shard} disagree about tensor {brief(example)} (listed in one, "
                "absent from the other); regenerate the index from the shards.",
                code="index_tensor_mismatch",
            )


def read_adapter_config(config: Any) -> dict[str, Any]:
    """The fields of a parsed PEFT `adapter_config.json` that matter, type-checked."""
    if not isinstance(config, dict):
        raise ArtefactError(
            f"{_ADAPTER_CONFIG_NAME} must be a JSON object as written by PEFT's `save_pretrained`.",
            code="adapter_config_invalid",
        )
    adapter = {field: config.get(field) for field in _ADAPTER_FIELDS}
    for field, types in _ADAPTER_FIELDS.items():
        value = adapter[field]
        wrong_type = value is not None and (isinstance(value, bool) or not isinstance(value, types))
        if wrong_type or (
            isinstance(value, list) and not all(isinstance(item, str) for item in value)
        ):
            raise ArtefactError(
                f"{_ADAPTER_CONFIG_NAME}: {field} has the wrong type ({brief(value)}); fix it or "
                "regenerate the file with PEFT's `save_pretrained`.",
                code="adapter_config_invalid",
            )
    return adapter


def classify_file(filename: str) -> FileKind:
    """What a file is for, from its name alone."""
    name = filename.lower()
    if name.endswith(".safetensors"):
        return "weights"
    if name.endswith(".gguf"):
        return "gguf"
    if name.endswith(_INDEX_SUFFIX):
        return "index"
    if name == _ADAPTER_CONFIG_NAME:
        return "adapter_config"
    if (
        (name.startswith("tokenizer") and name.endswith(".json"))
        or name in _TOKENIZER_NAMES
        or name.endswith(".model")  # sentencepiece
    ):
        return "tokenizer"
    if name.endswith(".json") and ("config" in name or name == "modules.json"):
        return "config"
    if name == "readme.md":
        return "card"
    return "other"


def _artefact_format(
    kinds: dict[str, FileKind], *, weight_count: int, has_adapter: bool
) -> ArtefactFormat:
    if has_adapter:
        return "adapter"
    if weight_count == 0 and "gguf" in kinds.values():
        return "gguf"
    if any(kind == "index" and "/" not in relpath for relpath, kind in kinds.items()):
        return "sharded"
    # Several weight files without an index: a multi-component pipeline, not one model.
    return "full" if weight_count == 1 else "other"


def _manifest_digest(files: Sequence[ArtefactFile]) -> str:
    lines = sorted(f"{file.path}\t{file.sha256}\t{file.size}\n" for file in files)
    return hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()


def _file_progress(
    progress: ArtefactProgress | None, relpath: str, hashed_before: int, total: int
) -> Callable[[int], None] | None:
    if progress is None:
        return None
    return lambda done: progress(relpath, hashed_before + done, total)
