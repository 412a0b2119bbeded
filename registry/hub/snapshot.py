"""What one upstream revision is (`HubSnapshot`), and how repositories, revisions and the local
cache are named."""

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from huggingface_hub import constants
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from pedigree_client.artefacts import PICKLE_SUFFIXES, ArtefactManifest
from registry.hub.cards import CardInfo
from registry.hub.errors import HubError

REVISION_SHA = re.compile(r"^[0-9a-f]{40}$")
# Branch, tag or commit; `..` is refused separately (a ref names a file under the cache's refs/).
_REVISION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")


@dataclass(frozen=True)
class HubSnapshot:
    """One upstream revision: its card, the manifest of its safetensors artefact, and where
    it was read from (`source`: "hub", "cache" or "snapshot_dir")."""

    repo_id: str
    revision: str
    card: CardInfo
    manifest: ArtefactManifest
    excluded: list[str]
    source: str
    location: str
    url: str
    gated: bool | str
    # `quantization_config.quant_method` of config.json: evidence of a quantized model.
    quantization_method: str | None = None


def cache_dir() -> Path:
    return Path(constants.HF_HUB_CACHE)


def is_offline() -> bool:
    # Read at call time: huggingface_hub reads the variable once, when it is first imported.
    return constants.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {
        "1",
        "ON",
        "YES",
        "TRUE",
    }


def repo_url(repo_id: str, revision: str | None = None) -> str:
    base = f"{constants.ENDPOINT}/{repo_id}"
    return f"{base}/tree/{revision}" if revision else base


def dataset_url(dataset_id: str) -> str:
    return f"{constants.ENDPOINT}/datasets/{dataset_id}"


def check_repo_id(repo_id: str) -> None:
    try:
        validate_repo_id(repo_id)
    except HFValidationError:
        raise HubError(
            f"{repo_id!r} is not a Hugging Face Hub model id; write it as 'owner/name' "
            "(e.g. 'sentence-transformers/all-MiniLM-L6-v2').",
            code="hub_repo_id_invalid",
        ) from None


def check_revision(revision: str) -> None:
    if not _REVISION_NAME.match(revision) or ".." in PurePosixPath(revision).parts:
        raise HubError(
            f"{revision!r} is not a revision; give a commit SHA (40 hexadecimal characters), "
            "a branch or a tag.",
            code="hub_revision_invalid",
        )


def is_pickle(relpath: str) -> bool:
    return PurePosixPath(relpath).suffix.lower() in PICKLE_SUFFIXES
