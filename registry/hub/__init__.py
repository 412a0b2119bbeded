"""Reading upstream models from the Hugging Face Hub: model card, pinned revision, weights.

Three sources, one result (`HubSnapshot`):

- a local snapshot folder (`snapshot_dir`), e.g. one written by `hf download --local-dir`;
- the local Hugging Face cache when `HF_HUB_OFFLINE=1`
  (`snapshot_download(local_files_only=True)`);
- the Hub itself, reading only metadata: `HfApi.model_info(files_metadata=True)` for the exact
  commit and each file's LFS SHA-256, safetensors headers through ranged requests
  (`parse_safetensors_file_metadata`, the per-file call behind `get_safetensors_metadata`), and the
  small non-LFS files (card, configs, tokenizer) which are downloaded to be hashed. Weights are
  never downloaded.

Pickle files an upstream repository also ships (`pytorch_model.bin`, ...) are left out of the
artefact and listed in `excluded`: they are never read. A repository with no safetensors weights
is refused, unless it holds GGUF files (a llama.cpp quantization), read from a local snapshot or
the cache with their headers validated. No database access here;
`registry.services.upstream_import` records the result.
"""

from pathlib import Path

from pedigree_client.artefacts import ArtefactProgress
from registry.hub.cards import CardInfo, parse_card
from registry.hub.datasets import DatasetLicence, dataset_licence
from registry.hub.errors import HubError
from registry.hub.licences import LicenceMapping, resolve_licence
from registry.hub.local import dataset_caches, read_cached, read_snapshot_dir
from registry.hub.relations import HUB_RELATIONS, UNKNOWN, RelationGuess, infer_relation
from registry.hub.remote import read_remote
from registry.hub.snapshot import (
    REVISION_SHA,
    HubSnapshot,
    cache_dir,
    check_repo_id,
    check_revision,
    dataset_url,
    is_offline,
    repo_url,
)

__all__ = [
    "HUB_RELATIONS",
    "REVISION_SHA",
    "UNKNOWN",
    "CardInfo",
    "DatasetLicence",
    "HubError",
    "HubSnapshot",
    "LicenceMapping",
    "RelationGuess",
    "cache_dir",
    "dataset_caches",
    "dataset_licence",
    "dataset_url",
    "infer_relation",
    "parse_card",
    "read_snapshot",
    "repo_url",
    "resolve_licence",
]


def read_snapshot(
    repo_id: str,
    *,
    revision: str | None = None,
    snapshot_dir: Path | None = None,
    allowed_hosts: list[str],
    progress: ArtefactProgress | None = None,
) -> HubSnapshot:
    """Read one revision of `repo_id` from a local folder, the local cache (offline) or the Hub.

    Raises HubError, or ArtefactError for files that fail validation.
    """
    check_repo_id(repo_id)
    if revision is not None:
        check_revision(revision)
    if snapshot_dir is not None:
        return read_snapshot_dir(repo_id, snapshot_dir, revision=revision, progress=progress)
    if is_offline():
        return read_cached(repo_id, revision, progress=progress)
    return read_remote(repo_id, revision, allowed_hosts=allowed_hosts, progress=progress)
