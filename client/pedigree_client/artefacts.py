"""Artefact inspection: content hashes, safetensors header validation, path confinement.

Pure Python with no Django imports, so services, Celery tasks and the CLI share it; callers turn
`ArtefactError` into a 4xx response. Nothing here unpickles anything, and tensor data is only
ever hashed, never parsed: safetensors headers are validated by hand first and then cross-checked
with the `safetensors` library.
"""

import hashlib
import io
import json
import os
import reprlib
import stat
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import unquote

# 1 MiB keeps the buffer in cache while amortising the per-call overhead of readinto/update.
HASH_CHUNK_SIZE = 1024 * 1024
# The safetensors library refuses headers above this size too; it bounds memory for bad input.
MAX_HEADER_SIZE = 100_000_000
# Index and adapter config files are small; the cap stops a hostile one exhausting memory.
MAX_JSON_FILE_SIZE = 100_000_000
# Keeps stored manifests small for models with many thousands of tensors.
MAX_SHAPES_LISTED = 2000

# Bits per element for every dtype the installed safetensors (0.8) accepts; F4/F6 are packed
# sub-byte types, so sizes are computed in bits. A test keeps this in step with the library.
DTYPE_BITS: dict[str, int] = {
    "BOOL": 8,
    "F4": 4,
    "F6_E2M3": 6,
    "F6_E3M2": 6,
    "U8": 8,
    "I8": 8,
    "F8_E5M2": 8,
    "F8_E4M3": 8,
    "F8_E8M0": 8,
    "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8,
    "I16": 16,
    "U16": 16,
    "F16": 16,
    "BF16": 16,
    "I32": 32,
    "U32": 32,
    "F32": 32,
    "C64": 64,
    "F64": 64,
    "I64": 64,
    "U64": 64,
}

BUFFER_DTYPES = frozenset({"I64", "U64", "BOOL"})
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib"})
_SAVE_FILE = "`safetensors.torch.save_file(state_dict, 'model.safetensors')`"
CONVERT_HINT = f"convert it with safetensors: {_SAVE_FILE}"
_REEXPORT_HINT = (
    f"the file is damaged or was not written by safetensors; re-export it with {_SAVE_FILE}"
)
# torch.save writes a zip archive by default and a bare pickle (PROTO opcode 0x80, protocol
# 2-5) in legacy mode.
_ZIP_MAGIC = b"PK\x03\x04"

FileKind = Literal["weights", "index", "adapter_config", "config", "tokenizer", "card", "other"]
ArtefactFormat = Literal["full", "sharded", "adapter", "other"]
# Values echoed into messages come from untrusted files and requests, so they are shortened.
_BRIEF = reprlib.Repr()
_BRIEF.maxstring = _BRIEF.maxother = 80
_BRIEF.maxlist = 8
_BRIEF.maxlong = 40
_brief = _BRIEF.repr

_Readable = io.FileIO | io.BufferedReader
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


class ArtefactError(ValueError):
    """An artefact was refused. The message says what was wrong and how to fix it."""

    def __init__(self, message: str, *, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


@dataclass(frozen=True)
class SafetensorsInfo:
    """What a safetensors header declares. `tensor_names` is complete but left out of
    `to_dict()`; `shapes` lists the first `MAX_SHAPES_LISTED` tensors by name."""

    header_size: int
    tensor_count: int
    parameters_by_dtype: dict[str, int]
    total_parameters: int
    shapes: dict[str, list[int]]
    shapes_truncated: bool
    metadata: dict[str, str]
    tensor_names: frozenset[str]

    def to_dict(self) -> dict[str, Any]:
        return {
            "header_size": self.header_size,
            "tensor_count": self.tensor_count,
            "parameters_by_dtype": dict(self.parameters_by_dtype),
            "total_parameters": self.total_parameters,
            "shapes": {name: list(shape) for name, shape in self.shapes.items()},
            "shapes_truncated": self.shapes_truncated,
            "metadata": dict(self.metadata),
        }


@dataclass(frozen=True)
class ArtefactFile:
    path: str
    size: int
    sha256: str
    kind: FileKind
    safetensors: SafetensorsInfo | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "sha256": self.sha256,
            "kind": self.kind,
            "safetensors": self.safetensors.to_dict() if self.safetensors else None,
        }


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


def weight_parameters(parameters_by_dtype: dict[str, int]) -> int:
    """The parameter count of an artefact: its tensor elements less buffers. 64-bit integer
    and boolean tensors (position ids, step counters, masks) never hold trainable weights."""
    return sum(count for dtype, count in parameters_by_dtype.items() if dtype not in BUFFER_DTYPES)


def sha256_file(path: Path | str, *, progress: Callable[[int], None] | None = None) -> str:
    """Return the lowercase hex SHA-256 of a file, reading it in fixed chunks (flat memory).

    `progress`, if given, is called after each chunk with the number of bytes read so far.
    """
    return _hash_file(Path(path), progress=progress)[0]


def inspect_safetensors(path: Path | str) -> SafetensorsInfo:
    """Validate a safetensors file's header and summarise it, reading no tensor data."""
    path = Path(path)
    return _inspect_safetensors(path, label=path.name)


def resolve_inside_roots(raw: str, roots: Sequence[Path]) -> Path:
    """Turn a client-supplied path into an existing path inside one of `roots`.

    The input is percent-decoded until stable; relative paths are taken from the first root.
    Symlinks are resolved before the containment check, so a link cannot lead outside.
    """
    if not roots:
        raise ArtefactError(
            "No artefact roots are configured; set PEDIGREE_ARTEFACT_ROOTS on the server.",
            code="no_roots",
        )
    decoded = _percent_decode(raw)
    if not decoded.strip():
        raise ArtefactError(
            "The artefact path is empty; give a path inside the artefact roots.",
            code="empty_path",
        )
    if "\x00" in decoded:
        raise ArtefactError("The artefact path contains a NUL byte; remove it.", code="nul_in_path")
    candidate = Path(decoded)
    if ".." in candidate.parts:
        raise ArtefactError(
            f"The artefact path {_brief(raw)} contains '..'; give a path inside the artefact roots "
            "without parent-directory steps.",
            code="parent_traversal",
        )
    given_roots = [Path(root).absolute() for root in roots]
    resolved_roots = [Path(root).resolve() for root in roots]
    # Refuse absolute paths outside the roots before touching the filesystem, so a client
    # cannot probe which paths exist elsewhere on the server.
    if candidate.is_absolute() and not any(
        candidate.is_relative_to(root) for root in (*given_roots, *resolved_roots)
    ):
        raise _outside_roots(raw)
    target = candidate if candidate.is_absolute() else given_roots[0] / candidate
    try:
        resolved = target.resolve(strict=True)
    except FileNotFoundError:
        raise ArtefactError(
            f"Nothing exists at {_brief(raw)} inside the artefact roots; check the path, or upload "
            "the artefact first.",
            code="missing_file",
        ) from None
    except (OSError, RuntimeError):  # symlink loops, over-long names, permissions
        raise ArtefactError(
            f"The artefact path {_brief(raw)} cannot be resolved (symlink loop, name too long "
            "or no permission); give a plain path to a readable file or folder.",
            code="invalid_path",
        ) from None
    if not any(resolved.is_relative_to(root) for root in resolved_roots):
        raise _outside_roots(raw)
    return resolved


def inspect_artefact(
    path: Path,
    *,
    roots: Sequence[Path] | None = None,
    progress: ArtefactProgress | None = None,
    exclude: Callable[[str], bool] | None = None,
) -> ArtefactManifest:
    """Validate and hash an artefact (a folder, or a single file) and describe it.

    Hidden files and folders (`.git`, `.cache`, ...) are skipped and not part of the digest,
    and so are files whose relative path `exclude` returns True for.
    Every file, after resolving symlinks, must lie inside `roots` (default: inside `path`
    itself). All headers and configs are validated before any file is hashed, so bad input
    fails fast. `progress(relpath, bytes_done, bytes_total)` reports hashing across the whole
    artefact, `bytes_done` and `bytes_total` counting every file.
    """
    path = Path(path)
    listing = _list_files(path, exclude=exclude)
    boundaries = [Path(root).resolve() for root in roots] if roots else [path.resolve()]
    # From here on only the resolved paths are opened, the ones checked against the roots.
    located = {relpath: _locate(file, relpath, boundaries) for relpath, file in listing}

    kinds = {relpath: classify_file(PurePosixPath(relpath).name) for relpath in located}
    weights = {
        relpath: _inspect_safetensors(file, label=relpath)
        for relpath, (file, _) in located.items()
        if kinds[relpath] == "weights"
    }
    if not weights:
        raise ArtefactError(
            f"{path.name or path} holds no .safetensors weights; add the model weights in "
            f"safetensors format ({CONVERT_HINT}).",
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
        digest, hashed = _hash_file(
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
    for file in files:
        if file.safetensors is None:
            continue
        for dtype, count in file.safetensors.parameters_by_dtype.items():
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


def _hash_file(path: Path, *, progress: Callable[[int], None] | None) -> tuple[str, int]:
    digest = hashlib.sha256()
    buffer = bytearray(HASH_CHUNK_SIZE)
    view = memoryview(buffer)
    done = 0
    # Unbuffered: readinto then fills our buffer straight from the kernel, with no extra copy.
    with _open_for_reading(path, label=path.name, buffering=0) as stream:
        if hasattr(os, "posix_fadvise"):
            # Lets the kernel read ahead further, which matters when the file is not cached.
            os.posix_fadvise(stream.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        while read := stream.readinto(view):
            digest.update(view[:read])
            done += read
            if progress is not None:
                progress(done)
    return digest.hexdigest(), done


def _open_for_reading(path: Path, *, label: str, buffering: int = -1) -> _Readable:
    try:
        return path.open("rb", buffering=buffering)
    except FileNotFoundError:
        raise ArtefactError(
            f"{label} does not exist; check the path.", code="missing_file"
        ) from None
    except OSError as error:
        raise ArtefactError(
            f"{label} cannot be read ({error.strerror}); make it a readable regular file.",
            code="unreadable_file",
        ) from None


def _inspect_safetensors(path: Path, *, label: str) -> SafetensorsInfo:
    _refuse_pickle_suffix(path.name, label=label)
    with _open_for_reading(path, label=label) as stream:
        file_size = os.fstat(stream.fileno()).st_size
        try:
            header_size, header = _read_header(stream, file_size=file_size, label=label)
        except ArtefactError as error:
            stream.seek(0)
            # Sniffed only once the header is known to be bad, so no valid file is misjudged.
            if _has_pickle_magic(stream.read(len(_ZIP_MAGIC))):
                raise ArtefactError(
                    f"{label} is named .safetensors but holds pickle data (a torch.save file); "
                    f"pickle can run arbitrary code when loaded, so {CONVERT_HINT}.",
                    code="pickle_content",
                ) from error
            raise
    info = validate_safetensors_header(
        header, header_size=header_size, file_size=file_size, label=label
    )
    _cross_check_with_library(path, info, label=label)
    return info


def _has_pickle_magic(first_bytes: bytes) -> bool:
    return first_bytes.startswith(_ZIP_MAGIC) or (
        len(first_bytes) >= 2 and first_bytes[0] == 0x80 and 2 <= first_bytes[1] <= 5
    )


def _read_header(stream: _Readable, *, file_size: int, label: str) -> tuple[int, dict[str, Any]]:
    prefix = stream.read(8)
    if len(prefix) < 8:
        raise ArtefactError(
            f"{label} is only {file_size} bytes; a safetensors file starts with an 8-byte header "
            f"length, so {_REEXPORT_HINT}.",
            code="file_too_small",
        )
    (header_size,) = struct.unpack("<Q", prefix)
    if header_size == 0:
        raise ArtefactError(
            f"{label} declares an empty header; {_REEXPORT_HINT}.", code="empty_header"
        )
    if header_size > MAX_HEADER_SIZE:
        raise ArtefactError(
            f"{label} declares a {header_size}-byte header, above the {MAX_HEADER_SIZE}-byte "
            f"limit safetensors allows; {_REEXPORT_HINT}.",
            code="header_too_large",
        )
    if header_size > file_size - 8:
        raise ArtefactError(
            f"{label} declares a {header_size}-byte header but the file is only {file_size} "
            f"bytes; {_REEXPORT_HINT}.",
            code="header_length_out_of_bounds",
        )
    raw = stream.read(header_size)
    if len(raw) != header_size:
        raise _truncated(label)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ArtefactError(
            f"{label}: the header is not UTF-8 text; {_REEXPORT_HINT}.", code="header_not_utf8"
        ) from None
    try:
        # Trailing spaces are the padding safetensors itself writes; json accepts them.
        header = _parse_json(text)
    except _DuplicateKeyError as error:
        raise ArtefactError(
            f"{label}: the header names {error} twice, which readers resolve differently; "
            f"{_REEXPORT_HINT}.",
            code="duplicate_key",
        ) from None
    except ValueError as error:
        raise ArtefactError(
            f"{label}: the header is not valid JSON ({error}); {_REEXPORT_HINT}.",
            code="header_not_json",
        ) from None
    if not isinstance(header, dict):
        raise ArtefactError(
            f"{label}: the header is JSON but not an object of tensors; {_REEXPORT_HINT}.",
            code="header_not_object",
        )
    return header_size, header


def validate_safetensors_header(
    header: dict[str, Any], *, header_size: int, file_size: int, label: str
) -> SafetensorsInfo:
    """Check a parsed safetensors header (its tensor entries and the data layout they imply)
    against the file's size. `header` loses its `__metadata__` entry."""
    metadata = header.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise ArtefactError(
            f"{label}: __metadata__ must map strings to strings; store other values as JSON "
            "strings and re-export.",
            code="invalid_metadata",
        )
    spans: list[tuple[int, int, str]] = []
    by_dtype: dict[str, int] = {}
    for name, entry in header.items():
        begin, end, dtype, count = _validate_tensor(name, entry, file_size=file_size, label=label)
        spans.append((begin, end, name))
        by_dtype[dtype] = by_dtype.get(dtype, 0) + count

    # Tensor data must tile the data section exactly: sorted by offset, each tensor starts
    # where the previous one ended, and the last one ends at the end of the file.
    data_end = 0
    for begin, end, name in sorted(spans):
        if begin < data_end:
            raise ArtefactError(
                f"{label}: tensor {_brief(name)} overlaps the data of another tensor; "
                f"{_REEXPORT_HINT}.",
                code="overlapping_offsets",
            )
        if begin > data_end:
            raise ArtefactError(
                f"{label}: there are {begin - data_end} unused bytes before tensor {_brief(name)}; "
                f"{_REEXPORT_HINT}.",
                code="offset_gap",
            )
        data_end = end
    expected_size = 8 + header_size + data_end
    if file_size > expected_size:
        raise ArtefactError(
            f"{label} has {file_size - expected_size} bytes after the last tensor; "
            f"{_REEXPORT_HINT}.",
            code="trailing_bytes",
        )
    if file_size < expected_size:
        raise _truncated(label)

    names = sorted(header)
    return SafetensorsInfo(
        header_size=header_size,
        tensor_count=len(names),
        parameters_by_dtype=dict(sorted(by_dtype.items())),
        total_parameters=sum(by_dtype.values()),
        shapes={name: list(header[name]["shape"]) for name in names[:MAX_SHAPES_LISTED]},
        shapes_truncated=len(names) > MAX_SHAPES_LISTED,
        metadata=dict(metadata),
        tensor_names=frozenset(names),
    )


def _validate_tensor(
    name: str, entry: Any, *, file_size: int, label: str
) -> tuple[int, int, str, int]:
    """Check one header entry; return (begin, end, dtype, element count)."""
    tensor = f"{label}: tensor {_brief(name)}"
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise ArtefactError(
            f"{tensor} must be an object with dtype, shape and data_offsets; {_REEXPORT_HINT}.",
            code="invalid_tensor_entry",
        )
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise ArtefactError(
            f"{tensor} has dtype {_brief(dtype)}, which safetensors does not define; use one of "
            f"{', '.join(DTYPE_BITS)}.",
            code="unknown_dtype",
        )
    # bool is an int subclass in Python, but `true` is not a dimension or an offset.
    if not isinstance(shape, list) or not all(
        type(dim) is int and 0 <= dim < 2**64 for dim in shape
    ):
        raise ArtefactError(
            f"{tensor} has shape {_brief(shape)}; a shape is a list of non-negative integers; "
            f"{_REEXPORT_HINT}.",
            code="invalid_shape",
        )
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(type(offset) is int and offset >= 0 for offset in offsets)
        and offsets[0] <= offsets[1]
    ):
        raise ArtefactError(
            f"{tensor} has data_offsets {_brief(offsets)}; they must be [begin, end] with "
            f"0 <= begin <= end; {_REEXPORT_HINT}.",
            code="invalid_offsets",
        )
    begin, end = offsets
    bits = _tensor_bits(shape, bits_each=DTYPE_BITS[dtype], max_bits=8 * file_size)
    if bits is not None and bits % 8:
        raise ArtefactError(
            f"{tensor} ({dtype}, shape {_brief(shape)}) does not fill a whole number of bytes; "
            "pad it to a multiple of 8 bits before saving.",
            code="misaligned_subbyte_tensor",
        )
    if bits is None or bits // 8 != end - begin:
        raise ArtefactError(
            f"{tensor} ({dtype}, shape {_brief(shape)}) does not fit its data_offsets "
            f"[{begin}, {end}] ({end - begin} bytes); {_REEXPORT_HINT}.",
            code="tensor_size_mismatch",
        )
    return begin, end, dtype, bits // DTYPE_BITS[dtype]


def _tensor_bits(shape: list[int], *, bits_each: int, max_bits: int) -> int | None:
    """Total bits for `shape`, or None once it exceeds `max_bits` (what the file can hold).

    Stopping early keeps a hostile header with huge dimensions from costing big-int time.
    """
    if 0 in shape:
        return 0
    bits = bits_each
    for dim in shape:
        bits *= dim
        if bits > max_bits:
            return None
    return bits


def _cross_check_with_library(path: Path, info: SafetensorsInfo, *, label: str) -> None:
    # Our own checks ran first; the library's reading must agree, or two readers could see two
    # different files. safe_open maps the file but only the header is read here. The library is
    # the client's optional `safetensors` extra; the server always has it.
    try:
        import safetensors
    except ImportError:
        return
    try:
        with safetensors.safe_open(path, framework="numpy") as handle:
            names = frozenset(handle.keys())
            metadata = handle.metadata() or {}
    except (safetensors.SafetensorError, OSError) as error:
        raise ArtefactError(
            f"{label}: the safetensors library refuses this file ({error}); {_REEXPORT_HINT}.",
            code="safetensors_rejected",
        ) from None
    if names != info.tensor_names or metadata != info.metadata:
        raise ArtefactError(
            f"{label}: the safetensors library reads this header differently from Pedigree; "
            f"{_REEXPORT_HINT}.",
            code="safetensors_disagreement",
        )


class _DuplicateKeyError(ValueError):
    pass


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKeyError(_brief(key))
        result[key] = value
    return result


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def _parse_json(text: str) -> Any:
    """Strict JSON: no duplicate keys, no NaN/Infinity, no stack exhaustion from deep nesting."""
    try:
        return json.loads(
            text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant
        )
    except RecursionError:
        raise ValueError("nested too deeply") from None


def _load_json(path: Path, *, label: str, code: str) -> Any:
    with _open_for_reading(path, label=label) as stream:
        data = stream.read(MAX_JSON_FILE_SIZE + 1)
    if len(data) > MAX_JSON_FILE_SIZE:
        raise ArtefactError(
            f"{label} is larger than {MAX_JSON_FILE_SIZE} bytes; it cannot be a real {label}.",
            code=code,
        )
    try:
        return _parse_json(data.decode("utf-8"))
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
            f"{', '.join(_brief(shard) for shard in missing[:5])}; "
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
                f"{relpath} and {shard} disagree about tensor {_brief(example)} (listed in one, "
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
                f"{_ADAPTER_CONFIG_NAME}: {field} has the wrong type ({_brief(value)}); fix it or "
                "regenerate the file with PEFT's `save_pretrained`.",
                code="adapter_config_invalid",
            )
    return adapter


def _list_files(base: Path, *, exclude: Callable[[str], bool] | None) -> list[tuple[str, Path]]:
    """(relative posix path, path) of every visible, not excluded file, sorted by path."""
    if not base.exists():
        raise ArtefactError(f"{base.name} does not exist; check the path.", code="missing_file")
    if not base.is_dir():
        if exclude is not None and exclude(base.name):
            return []
        _check_file_name(base.name)
        _refuse_pickle_suffix(base.name, label=base.name)
        return [(base.name, base)]

    def fail(error: OSError) -> None:
        raise ArtefactError(
            f"{os.path.relpath(error.filename, base)} cannot be listed ({error.strerror}); "
            "make it readable.",
            code="unreadable_file",
        )

    found = []
    for folder, dirnames, filenames in os.walk(base, onerror=fail):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        for dirname in dirnames:
            # os.walk does not follow these; refusing beats silently leaving files out.
            if Path(folder, dirname).is_symlink():
                raise ArtefactError(
                    f"{Path(folder, dirname).relative_to(base).as_posix()} is a symlink to a "
                    "folder; copy the folder in instead.",
                    code="symlinked_directory",
                )
        for filename in filenames:
            if filename.startswith("."):
                continue
            file = Path(folder, filename)
            relpath = file.relative_to(base).as_posix()
            if exclude is not None and exclude(relpath):
                continue
            _check_file_name(relpath)
            _refuse_pickle_suffix(filename, label=relpath)
            found.append((relpath, file))
    return sorted(found)


def _locate(file: Path, relpath: str, boundaries: Sequence[Path]) -> tuple[Path, int]:
    """Resolve a listed file and check it is a regular file inside `boundaries`; return
    (resolved path, size)."""
    try:
        resolved = file.resolve(strict=True)
        status = resolved.stat()
    except FileNotFoundError:
        raise ArtefactError(
            f"{relpath} is a broken symlink; point it at a file or remove it.",
            code="missing_file",
        ) from None
    except (OSError, RuntimeError):
        raise ArtefactError(
            f"{relpath} cannot be resolved (symlink loop or no permission); replace it with a "
            "plain file.",
            code="invalid_path",
        ) from None
    if not any(resolved.is_relative_to(boundary) for boundary in boundaries):
        raise ArtefactError(
            f"{relpath} is a symlink to a file outside the artefact roots; copy the file in "
            "instead of linking to it.",
            code="outside_roots",
        )
    # A FIFO or device would block or never end when hashed.
    if not stat.S_ISREG(status.st_mode):
        raise ArtefactError(
            f"{relpath} is not a regular file; replace it with a plain file.",
            code="not_a_regular_file",
        )
    return resolved, status.st_size


def _check_file_name(relpath: str) -> None:
    # The manifest digest joins names with tabs and newlines, so those must not occur in names.
    try:
        relpath.encode("utf-8")
    except UnicodeEncodeError:
        valid = False
    else:
        valid = not any(ord(char) < 32 or char == "\x7f" for char in relpath)
    if not valid:
        raise ArtefactError(
            f"{_brief(relpath)} has control characters or invalid UTF-8 in its name; rename it.",
            code="invalid_file_name",
        )


def _refuse_pickle_suffix(filename: str, *, label: str) -> None:
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix in PICKLE_SUFFIXES:
        raise ArtefactError(
            f"{label} is a pickle-based file ({suffix}), and loading pickle can run arbitrary "
            f"code, so it is refused: {CONVERT_HINT}, or delete it if it is not model weights "
            "(optimizer state, training_args.bin).",
            code="pickle_refused",
        )


def classify_file(filename: str) -> FileKind:
    """What a file is for, from its name alone."""
    name = filename.lower()
    if name.endswith(".safetensors"):
        return "weights"
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


def _percent_decode(raw: str) -> str:
    # Decode until stable so double-encoded input (%252e%252e -> %2e%2e -> ..) cannot slip past
    # the checks. Each change shortens the string, so this ends.
    decoded = unquote(raw)
    while decoded != raw:
        raw, decoded = decoded, unquote(decoded)
    return decoded


def _outside_roots(raw: str) -> ArtefactError:
    return ArtefactError(
        f"The artefact path {_brief(raw)} is outside the artefact roots (symlinks are resolved); "
        "place the artefact under a configured root and give its path relative to it.",
        code="outside_roots",
    )


def _truncated(label: str) -> ArtefactError:
    return ArtefactError(
        f"{label} is shorter than its header says (truncated copy or download); copy or "
        "download it again.",
        code="truncated_file",
    )
