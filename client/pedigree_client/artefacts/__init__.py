"""Artefact inspection: content hashes, safetensors header validation, path confinement.

Pure Python with no Django imports, so services, Celery tasks and the CLI share it; callers turn
`ArtefactError` into a 4xx response. Nothing here unpickles anything, and tensor data is only
ever hashed, never parsed: safetensors headers are validated by hand first and then cross-checked
with the `safetensors` library.

`safetensors` holds the one reader of weight files, used by registration and evaluation alike;
`manifest` describes a whole artefact; `paths` confines client-supplied paths; `hashing`
computes SHA-256 digests; `gguf` validates GGUF headers (llama.cpp quantizations, imported
upstream models only).
"""

from pedigree_client.artefacts.errors import ArtefactError
from pedigree_client.artefacts.gguf import GgufInfo, inspect_gguf
from pedigree_client.artefacts.hashing import HASH_CHUNK_SIZE, sha256_file
from pedigree_client.artefacts.manifest import (
    MAX_JSON_FILE_SIZE,
    ArtefactFile,
    ArtefactFormat,
    ArtefactManifest,
    ArtefactProgress,
    FileKind,
    classify_file,
    inspect_artefact,
    manifest_from_files,
    read_adapter_config,
)
from pedigree_client.artefacts.paths import resolve_inside_roots
from pedigree_client.artefacts.safetensors import (
    BUFFER_DTYPES,
    CONVERT_HINT,
    DTYPE_BITS,
    MAX_HEADER_SIZE,
    MAX_SHAPES_LISTED,
    PICKLE_SUFFIXES,
    SafetensorsInfo,
    inspect_safetensors,
    pickle_refusal,
    validate_safetensors_header,
    weight_parameters,
)

__all__ = [
    "BUFFER_DTYPES",
    "CONVERT_HINT",
    "DTYPE_BITS",
    "HASH_CHUNK_SIZE",
    "MAX_HEADER_SIZE",
    "MAX_JSON_FILE_SIZE",
    "MAX_SHAPES_LISTED",
    "PICKLE_SUFFIXES",
    "ArtefactError",
    "ArtefactFile",
    "ArtefactFormat",
    "ArtefactManifest",
    "ArtefactProgress",
    "FileKind",
    "GgufInfo",
    "SafetensorsInfo",
    "classify_file",
    "inspect_artefact",
    "inspect_gguf",
    "inspect_safetensors",
    "manifest_from_files",
    "pickle_refusal",
    "read_adapter_config",
    "resolve_inside_roots",
    "sha256_file",
    "validate_safetensors_header",
    "weight_parameters",
]
