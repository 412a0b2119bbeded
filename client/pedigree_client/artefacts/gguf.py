"""GGUF weight files (llama.cpp's format): the header parsed strictly, with bounds, before a file
is accepted. GGUF is not pickle: a fixed little-endian header (magic `GGUF`, version, tensor
count, metadata count), typed metadata key/values, then one record per tensor (name, shape, type,
offset into the aligned data section). Nothing here executes or unpickles anything; tensor data is
only hashed.

Checked: the magic and a supported version (2 or 3), counts within sane limits, every string and
array length within the file and the limits below, known value and tensor types, and every
tensor's data lying inside the file at an aligned offset. Only a few metadata values are kept.
"""

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pedigree_client.artefacts.errors import ArtefactError, brief
from pedigree_client.artefacts.reading import open_for_reading

GGUF_MAGIC = b"GGUF"
GGUF_VERSIONS = (2, 3)
# Real files hold hundreds to a few thousand tensors and a few dozen metadata keys (one of them
# the tokenizer's vocabulary, an array of up to a few hundred thousand strings).
MAX_TENSORS = 100_000
MAX_METADATA = 10_000
MAX_STRING = 16_000_000
MAX_ARRAY = 50_000_000
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_NESTING = 3
DEFAULT_ALIGNMENT = 32

# GGML tensor types: id -> (name, elements per block, bytes per block), as gguf-py's
# GGML_QUANT_SIZES gives them.
GGML_TYPES: dict[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4),
    1: ("F16", 1, 2),
    2: ("Q4_0", 32, 18),
    3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22),
    7: ("Q5_1", 32, 24),
    8: ("Q8_0", 32, 34),
    9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84),
    11: ("Q3_K", 256, 110),
    12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210),
    15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66),
    17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50),
    20: ("IQ4_NL", 32, 18),
    21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82),
    23: ("IQ4_XS", 256, 136),
    24: ("I8", 1, 1),
    25: ("I16", 1, 2),
    26: ("I32", 1, 4),
    27: ("I64", 1, 8),
    28: ("F64", 1, 8),
    29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2),
    34: ("TQ1_0", 256, 54),
    35: ("TQ2_0", 256, 66),
    39: ("MXFP4", 32, 17),
}

# Metadata value types: id -> struct format of a fixed-size value (strings and arrays apart).
_STRING, _ARRAY = 8, 9
_SCALARS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_KEPT_KEYS = ("general.architecture", "general.name", "general.file_type", "general.alignment")


@dataclass(frozen=True)
class GgufInfo:
    """What a GGUF file's header says: format version, counts, a few metadata values and the
    parameters per GGML tensor type."""

    version: int
    tensor_count: int
    metadata_count: int
    metadata: dict[str, Any]
    parameters_by_dtype: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "tensor_count": self.tensor_count,
            "metadata_count": self.metadata_count,
            "metadata": dict(self.metadata),
            "parameters_by_dtype": dict(self.parameters_by_dtype),
        }


class _Reader:
    """Reads the header of an open file, refusing any read past its end."""

    def __init__(self, stream: Any, size: int, label: str) -> None:
        self.stream, self.size, self.label = stream, size, label
        self.position = 0

    def fail(self, what: str) -> ArtefactError:
        return ArtefactError(
            f"{self.label} is not a valid GGUF file: {what}. Re-download it, or re-convert the "
            "model with llama.cpp's convert_hf_to_gguf.py.",
            code="gguf_invalid",
        )

    def take(self, count: int, what: str) -> bytes:
        if count < 0 or self.position + count > self.size:
            raise self.fail(f"{what} runs past the end of the file (truncated?)")
        data: bytes = self.stream.read(count)
        if len(data) != count:
            raise self.fail(f"{what} runs past the end of the file (truncated?)")
        self.position += count
        return data

    def skip(self, count: int, what: str) -> None:
        if count < 0 or self.position + count > self.size:
            raise self.fail(f"{what} runs past the end of the file (truncated?)")
        self.stream.seek(count, os.SEEK_CUR)
        self.position += count

    def unpack(self, fmt: str, what: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str, *, keep: bool = True) -> str:
        length = self.unpack("<Q", f"the length of {what}")
        if length > MAX_STRING:
            raise self.fail(f"{what} claims {length} bytes (at most {MAX_STRING})")
        if not keep:
            self.skip(length, what)
            return ""
        try:
            return self.take(length, what).decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail(f"{what} is not UTF-8") from None

    def value(self, kind: int, what: str, *, keep: bool, depth: int = 0) -> Any:
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind], what)
        if kind == _STRING:
            return self.string(what, keep=keep)
        if kind != _ARRAY:
            raise self.fail(f"{what} has unknown value type {kind}")
        if depth >= MAX_NESTING:
            raise self.fail(f"{what} nests arrays more than {MAX_NESTING} deep")
        item = self.unpack("<I", f"the element type of {what}")
        count = self.unpack("<Q", f"the length of {what}")
        if count > MAX_ARRAY:
            raise self.fail(f"{what} claims {count} elements (at most {MAX_ARRAY})")
        if item in _SCALARS:
            self.skip(count * struct.calcsize(_SCALARS[item]), what)
            return None
        for _ in range(count):
            self.value(item, what, keep=False, depth=depth + 1)
        return None


def inspect_gguf(path: Path | str, *, label: str | None = None) -> GgufInfo:
    """Validate a GGUF file's header and summarise it, reading no tensor data."""
    path = Path(path)
    label = label or path.name
    with open_for_reading(path, label=label) as stream:
        size = os.fstat(stream.fileno()).st_size
        return _parse(_Reader(stream, size, label))


def _parse(reader: _Reader) -> GgufInfo:
    magic = reader.take(4, "the magic number") if reader.size >= 4 else b""
    if magic != GGUF_MAGIC:
        raise reader.fail(f"it does not start with 'GGUF' (starts with {brief(magic)})")
    version = reader.unpack("<I", "the version")
    if version not in GGUF_VERSIONS:
        raise reader.fail(
            f"version {version} is not supported (GGUF {' or '.join(map(str, GGUF_VERSIONS))})"
        )
    tensor_count = reader.unpack("<Q", "the tensor count")
    metadata_count = reader.unpack("<Q", "the metadata count")
    if tensor_count > MAX_TENSORS:
        raise reader.fail(f"it claims {tensor_count} tensors (at most {MAX_TENSORS})")
    if metadata_count > MAX_METADATA:
        raise reader.fail(f"it claims {metadata_count} metadata entries (at most {MAX_METADATA})")
    metadata: dict[str, Any] = {}
    seen: set[str] = set()
    for index in range(metadata_count):
        key = reader.string(f"metadata key #{index}")
        if key in seen:
            raise reader.fail(f"metadata key {brief(key)} appears twice")
        seen.add(key)
        kind = reader.unpack("<I", f"the type of {brief(key)}")
        value = reader.value(kind, f"metadata {brief(key)}", keep=key in _KEPT_KEYS)
        if key in _KEPT_KEYS:
            metadata[key] = value
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
        raise reader.fail(f"general.alignment {brief(alignment)} is not a power of two")
    tensors = [_tensor_info(reader, index) for index in range(tensor_count)]
    names = [name for name, _, _, _ in tensors]
    if len(set(names)) != len(names):
        raise reader.fail("two tensors have the same name")
    data_start = -(-reader.position // alignment) * alignment
    by_type: dict[str, int] = {}
    for name, elements, nbytes, (type_name, offset) in tensors:
        if offset % alignment:
            raise reader.fail(f"tensor {brief(name)} starts at an unaligned offset {offset}")
        if data_start + offset + nbytes > reader.size:
            raise reader.fail(f"tensor {brief(name)} lies past the end of the file (truncated?)")
        by_type[type_name] = by_type.get(type_name, 0) + elements
    return GgufInfo(
        version=version,
        tensor_count=tensor_count,
        metadata_count=metadata_count,
        metadata=metadata,
        parameters_by_dtype=dict(sorted(by_type.items())),
    )


def _tensor_info(reader: _Reader, index: int) -> tuple[str, int, int, tuple[str, int]]:
    """(name, elements, bytes, (type name, offset)) of tensor record `index`."""
    name = reader.string(f"the name of tensor #{index}")
    dims = reader.unpack("<I", f"the dimension count of tensor {brief(name)}")
    if not 1 <= dims <= MAX_DIMS:
        raise reader.fail(f"tensor {brief(name)} has {dims} dimensions (1 to {MAX_DIMS})")
    shape = [reader.unpack("<Q", f"the shape of tensor {brief(name)}") for _ in range(dims)]
    kind = reader.unpack("<I", f"the type of tensor {brief(name)}")
    offset = reader.unpack("<Q", f"the offset of tensor {brief(name)}")
    if kind not in GGML_TYPES:
        raise reader.fail(f"tensor {brief(name)} has unknown GGML type {kind}")
    type_name, block, block_bytes = GGML_TYPES[kind]
    elements = 1
    for extent in shape:
        elements *= extent
    if elements > reader.size * 8:  # no type packs more than 8 elements per byte
        raise reader.fail(f"tensor {brief(name)} claims {elements} elements, more than the file")
    if shape[0] % block:
        raise reader.fail(
            f"tensor {brief(name)}'s first dimension {shape[0]} is not a multiple of the "
            f"{type_name} block size {block}"
        )
    return name, elements, elements // block * block_bytes, (type_name, offset)
