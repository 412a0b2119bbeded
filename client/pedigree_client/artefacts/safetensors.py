"""safetensors weights: header reading and validation, the dtypes, and the refusal of pickle.

Tensor data is never parsed: headers are validated by hand first and then cross-checked with
the `safetensors` library, which is optional (the client's `safetensors` extra) and imported
only when a file is inspected.
"""

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from pedigree_client.artefacts.errors import ArtefactError, brief
from pedigree_client.artefacts.reading import (
    DuplicateKeyError,
    Readable,
    open_for_reading,
    parse_json,
)

# The safetensors library refuses headers above this size too; it bounds memory for bad input.
MAX_HEADER_SIZE = 100_000_000
# Keeps stored manifests small for models with many thousands of tensors.
MAX_SHAPES_LISTED = 2000
# A legal `__metadata__` block may be huge (99 MB ones grew a database by 300 MB); manifests keep
# at most this much of it, and name what they left out with the whole block's hash.
MAX_METADATA_KEPT = 64 * 1024
METADATA_OMITTED_KEY = "__pedigree_omitted__"

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
            "metadata": kept_metadata(self.metadata),
        }


def kept_metadata(metadata: dict[str, str]) -> dict[str, str]:
    """`metadata` as a manifest keeps it: whole when its JSON is at most MAX_METADATA_KEPT bytes,
    else the entries that fit (in key order) and a note of the rest with the block's SHA-256."""
    encoded = json.dumps(metadata, sort_keys=True, ensure_ascii=False).encode()
    if len(encoded) <= MAX_METADATA_KEPT:
        return dict(metadata)
    kept: dict[str, str] = {}
    budget = MAX_METADATA_KEPT - 512  # room for the note
    for key in sorted(metadata):
        size = len(json.dumps({key: metadata[key]}, ensure_ascii=False).encode())
        if size <= budget:
            kept[key] = metadata[key]
            budget -= size
    kept[METADATA_OMITTED_KEY] = (
        f"{len(metadata) - len(kept)} of {len(metadata)} entries left out: the block is "
        f"{len(encoded)} bytes, above the {MAX_METADATA_KEPT} kept; its JSON (sorted keys) "
        f"has SHA-256 {hashlib.sha256(encoded).hexdigest()}"
    )
    return kept


def weight_parameters(parameters_by_dtype: dict[str, int]) -> int:
    """The parameter count of an artefact: its tensor elements less buffers. 64-bit integer
    and boolean tensors (position ids, step counters, masks) never hold trainable weights."""
    return sum(count for dtype, count in parameters_by_dtype.items() if dtype not in BUFFER_DTYPES)


def inspect_safetensors(path: Path | str, *, label: str | None = None) -> SafetensorsInfo:
    """Validate a safetensors file's header and summarise it, reading no tensor data.

    `label` names the file in messages (default: its name)."""
    path = Path(path)
    label = label or path.name
    refuse_pickle_suffix(path.name, label=label)
    with open_for_reading(path, label=label) as stream:
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


def _read_header(stream: Readable, *, file_size: int, label: str) -> tuple[int, dict[str, Any]]:
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
        header = parse_json(text)
    except DuplicateKeyError as error:
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
    # The format says the header starts with "{" (only trailing spaces pad it); a reader that
    # accepts leading whitespace, as the safetensors library does, is more lenient than the spec.
    if not text.startswith("{"):
        raise ArtefactError(
            f"{label}: the header does not start with '{{' as the safetensors format requires; "
            f"{_REEXPORT_HINT}.",
            code="header_not_at_start",
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
                f"{label}: tensor {brief(name)} overlaps the data of another tensor; "
                f"{_REEXPORT_HINT}.",
                code="overlapping_offsets",
            )
        if begin > data_end:
            raise ArtefactError(
                f"{label}: there are {begin - data_end} unused bytes before tensor {brief(name)}; "
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
    tensor = f"{label}: tensor {brief(name)}"
    if not isinstance(entry, dict) or not {"dtype", "shape", "data_offsets"} <= entry.keys():
        raise ArtefactError(
            f"{tensor} must be an object with dtype, shape and data_offsets; {_REEXPORT_HINT}.",
            code="invalid_tensor_entry",
        )
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        raise ArtefactError(
            f"{tensor} has dtype {brief(dtype)}, which safetensors does not define; use one of "
            f"{', '.join(DTYPE_BITS)}.",
            code="unknown_dtype",
        )
    # bool is an int subclass in Python, but `true` is not a dimension or an offset.
    if not isinstance(shape, list) or not all(
        type(dim) is int and 0 <= dim < 2**64 for dim in shape
    ):
        raise ArtefactError(
            f"{tensor} has shape {brief(shape)}; a shape is a list of non-negative integers; "
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
            f"{tensor} has data_offsets {brief(offsets)}; they must be [begin, end] with "
            f"0 <= begin <= end; {_REEXPORT_HINT}.",
            code="invalid_offsets",
        )
    begin, end = offsets
    bits = _tensor_bits(shape, bits_each=DTYPE_BITS[dtype], max_bits=8 * file_size)
    if bits is not None and bits % 8:
        raise ArtefactError(
            f"{tensor} ({dtype}, shape {brief(shape)}) does not fill a whole number of bytes; "
            "pad it to a multiple of 8 bits before saving.",
            code="misaligned_subbyte_tensor",
        )
    if bits is None or bits // 8 != end - begin:
        raise ArtefactError(
            f"{tensor} ({dtype}, shape {brief(shape)}) does not fit its data_offsets "
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


def pickle_refusal(filename: str, *, label: str) -> ArtefactError | None:
    """The refusal of a pickle-based file, judged by its name; None for any other file."""
    suffix = PurePosixPath(filename).suffix.lower()
    if suffix not in PICKLE_SUFFIXES:
        return None
    return ArtefactError(
        f"{label} is a pickle-based file ({suffix}), and loading pickle can run arbitrary "
        f"code, so it is refused: {CONVERT_HINT}, or delete it if it is not model weights "
        "(optimizer state, training_args.bin).",
        code="pickle_refused",
    )


def refuse_pickle_suffix(filename: str, *, label: str) -> None:
    if (refusal := pickle_refusal(filename, label=label)) is not None:
        raise refusal


def _truncated(label: str) -> ArtefactError:
    return ArtefactError(
        f"{label} is shorter than its header says (truncated copy or download); copy or "
        "download it again.",
        code="truncated_file",
    )
