"""The manifest an artefact keeps in the database, bounded by `PEDIGREE_MAX_MANIFEST_BYTES`.

A legal artefact may describe itself at any length (a hundred thousand tensors with long names,
thousands of files): stored whole, a few such rows grow the database and slow every list that
reads them. What is kept is summarised step by step until it fits, each step leaving a count and
the SHA-256 of what it left out; the file list itself is never cut (evaluations fetch the files
it names, and the digest is computed over it), so an artefact whose file list alone is above the
cap is refused.
"""

import hashlib
import json
from typing import Any

from django.conf import settings

from pedigree_client.artefacts import ArtefactError, ArtefactManifest

SHAPES_OMITTED_KEY = "shapes_omitted"
METADATA_OMITTED_KEY = "__pedigree_omitted__"


def _encoded(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False).encode()


def manifest_stored(manifest: ArtefactManifest) -> dict[str, Any]:
    """`manifest` as stored and answered: whole when its JSON fits the cap, else without tensor
    shapes, then without safetensors metadata (each replaced by a count and its hash); an
    `ArtefactError` (`manifest_too_large`) when even that does not fit."""
    limit = settings.PEDIGREE_MAX_MANIFEST_BYTES
    stored = manifest.to_dict()
    size = len(_encoded(stored))
    if size <= limit:
        return stored
    weights = [
        (entry, file.safetensors)
        for entry, file in zip(stored["files"], manifest.files, strict=True)
        if file.safetensors is not None
    ]
    for entry, info in weights:
        summary = entry["safetensors"]
        if summary["shapes"]:
            summary[SHAPES_OMITTED_KEY] = (
                f"{len(summary['shapes'])} shapes of {info.tensor_count} tensors left out: the "
                f"manifest is above PEDIGREE_MAX_MANIFEST_BYTES ({limit}); their JSON (sorted "
                f"keys) has SHA-256 {hashlib.sha256(_encoded(summary['shapes'])).hexdigest()}"
            )
            summary["shapes"] = {}
            summary["shapes_truncated"] = True
    if len(_encoded(stored)) <= limit:
        return stored
    for entry, info in weights:
        if info.metadata:
            block = _encoded(info.metadata)
            entry["safetensors"]["metadata"] = {
                METADATA_OMITTED_KEY: (
                    f"{len(info.metadata)} entries left out: the manifest is above "
                    f"PEDIGREE_MAX_MANIFEST_BYTES ({limit}); the block is {len(block)} bytes and "
                    f"its JSON (sorted keys) has SHA-256 {hashlib.sha256(block).hexdigest()}"
                )
            }
    summarised = len(_encoded(stored))
    if summarised <= limit:
        return stored
    raise ArtefactError(
        f"The artefact's manifest takes {summarised} bytes even without tensor shapes and "
        f"metadata ({len(manifest.files)} files), above the {limit} this server keeps "
        "(PEDIGREE_MAX_MANIFEST_BYTES); register fewer files (leave out what the model does not "
        "need, such as checkpoints of earlier steps), or ask the operators to raise the limit.",
        code="manifest_too_large",
    )
