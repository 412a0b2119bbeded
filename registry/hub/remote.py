"""Reading an upstream revision from the Hub itself, metadata only: the exact commit and each
file's LFS SHA-256, safetensors headers through ranged requests, and the small non-LFS files,
downloaded to be hashed. Weights are never downloaded."""

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

from huggingface_hub import HfApi, constants
from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

from pedigree_client.artefacts import (
    CONVERT_HINT,
    ArtefactFile,
    ArtefactProgress,
    SafetensorsInfo,
    classify_file,
    manifest_from_files,
    read_adapter_config,
    sha256_file,
    validate_safetensors_header,
)
from registry.hub.cards import CARD_FILE, parse_card, read_card
from registry.hub.errors import HubError, first_line
from registry.hub.relations import quantization_method_of
from registry.hub.snapshot import REVISION_SHA, HubSnapshot, is_pickle, repo_url

_ADAPTER_CONFIG = "adapter_config.json"
# Files the Hub keeps outside LFS are small (it requires LFS above 10 MB).
MAX_SMALL_FILE_SIZE = 50_000_000


def check_endpoint(allowed_hosts: list[str]) -> None:
    host = urlparse(constants.ENDPOINT).hostname or ""
    if host not in allowed_hosts:
        raise HubError(
            f"The Hub endpoint {constants.ENDPOINT} is not allowed; its host must be in "
            f"PEDIGREE_HUB_ALLOWED_HOSTS ({', '.join(allowed_hosts) or 'empty'}).",
            code="hub_host_not_allowed",
            kind="forbidden",
        )


def read_remote(
    repo_id: str,
    revision: str | None,
    *,
    allowed_hosts: list[str],
    progress: ArtefactProgress | None,
) -> HubSnapshot:
    check_endpoint(allowed_hosts)
    api = HfApi()
    info = _call_hub(
        repo_id, revision, lambda: api.model_info(repo_id, revision=revision, files_metadata=True)
    )
    sha = info.sha
    if not sha or not REVISION_SHA.match(sha):
        raise HubError(
            f"The Hub did not give a commit SHA for {repo_id}@{revision or 'main'}.",
            code="hub_unreachable",
            kind="unavailable",
        )
    siblings = [s for s in info.siblings or [] if not _is_hidden(s.rfilename)]
    excluded = sorted(s.rfilename for s in siblings if is_pickle(s.rfilename))
    kept = [s for s in siblings if not is_pickle(s.rfilename)]
    ggufs = sorted(s.rfilename for s in kept if classify_file(s.rfilename) == "gguf")
    if ggufs:
        # Weights are never downloaded from the Hub, and a GGUF header is validated only from
        # a local copy (the Hub gives no ranged header reader for it as for safetensors).
        raise HubError(
            f"{repo_id} holds GGUF files ({', '.join(ggufs[:3])}); Pedigree validates GGUF "
            f"headers from a local copy only: `hf download {repo_id} --include '*.gguf' "
            "README.md`, then import with HF_HUB_OFFLINE=1 or --snapshot-dir.",
            code="gguf_needs_local_copy",
        )
    card_sibling = next((s for s in kept if s.rfilename == CARD_FILE), None)
    if card_sibling is None:
        raise HubError(
            f"{repo_id}@{sha} has no model card ({CARD_FILE}), so its licence and datasets are "
            "unknown.",
            code="card_missing",
        )
    card_path = _download_small(api, repo_id, sha, CARD_FILE, _sibling_size(card_sibling))
    card = parse_card(read_card(card_path, repo_id=repo_id), repo_id=repo_id)
    total = sum(_sibling_size(s) for s in kept)
    files: list[ArtefactFile] = []
    adapter = None
    quantization_method = None
    done = 0
    for sibling in sorted(kept, key=lambda s: s.rfilename):
        name = sibling.rfilename
        kind = classify_file(PurePosixPath(name).name)
        size = _sibling_size(sibling)
        safetensors = None
        if name == CARD_FILE:
            digest = sha256_file(card_path)
        # The adapter config is read even if a repository keeps it in LFS.
        elif sibling.lfs is None or name == _ADAPTER_CONFIG:
            local = _download_small(api, repo_id, sha, name, size)
            digest = sha256_file(local)
            if name == _ADAPTER_CONFIG:
                adapter = read_adapter_config(_load_small_json(local, repo_id=repo_id, name=name))
            elif name == "config.json":
                quantization_method = quantization_method_of(
                    _load_small_json(local, repo_id=repo_id, name=name)
                )
        else:
            digest = sibling.lfs.sha256
        if kind == "weights":
            header = _call_hub(
                repo_id,
                sha,
                partial(api.parse_safetensors_file_metadata, repo_id, name, revision=sha),
            )
            safetensors = _remote_header(header, file_size=size, label=name)
        files.append(
            ArtefactFile(path=name, size=size, sha256=digest, kind=kind, safetensors=safetensors)
        )
        done += size
        if progress is not None:
            progress(name, done, total)
    if not any(file.kind == "weights" for file in files):
        raise HubError(
            f"{repo_id}@{sha} has no .safetensors weights"
            + (f" (only pickle files: {', '.join(excluded[:3])})" if excluded else "")
            + f"; Pedigree reads weights only as safetensors: {CONVERT_HINT}, and publish "
            "the result.",
            code="no_weights",
        )
    return HubSnapshot(
        repo_id=repo_id,
        revision=sha,
        card=card,
        manifest=manifest_from_files(files, adapter=adapter),
        excluded=excluded,
        source="hub",
        location=repo_url(repo_id, sha),
        gated=info.gated or card.gated,
        url=repo_url(repo_id, sha),
        quantization_method=quantization_method,
    )


def _call_hub(repo_id: str, revision: str | None, call: Callable[[], Any]) -> Any:
    wanted = f"{repo_id}@{revision or 'main'}"
    try:
        return call()
    except GatedRepoError:
        raise HubError(
            f"{repo_id} is gated; accept its conditions on the Hub with the account whose token "
            "the server uses (HF_TOKEN), then import again.",
            code="hub_gated",
            kind="forbidden",
        ) from None
    except RepositoryNotFoundError:
        raise HubError(
            f"There is no model {repo_id} on the Hub (or it is private); check the id.",
            code="hub_repo_not_found",
            kind="not_found",
        ) from None
    except RevisionNotFoundError:
        raise HubError(
            f"{repo_id} has no revision {revision!r}; give an existing commit SHA, branch or tag.",
            code="hub_revision_not_found",
            kind="not_found",
        ) from None
    except HubError:
        raise
    # huggingface_hub raises its HTTP library's errors for transport failures (their types
    # differ between its major versions); all of them mean the Hub could not be read.
    except Exception as error:
        raise HubError(
            f"Could not read {wanted} from {constants.ENDPOINT} ({type(error).__name__}: "
            f"{first_line(error)}); try again later.",
            code="hub_unreachable",
            kind="unavailable",
        ) from None


def _sibling_size(sibling: Any) -> int:
    size = sibling.lfs.size if sibling.lfs is not None else sibling.size
    if not isinstance(size, int) or size < 0:
        raise HubError(
            f"The Hub gave no size for {sibling.rfilename}.",
            code="hub_unreachable",
            kind="unavailable",
        )
    return size


def _download_small(api: HfApi, repo_id: str, sha: str, name: str, size: int) -> Path:
    if size > MAX_SMALL_FILE_SIZE:
        raise HubError(
            f"{repo_id}: {name} is {size} bytes outside LFS; Pedigree hashes only small non-LFS "
            "files remotely; import from a local snapshot instead.",
            code="hub_file_too_large",
        )
    return Path(_call_hub(repo_id, sha, lambda: api.hf_hub_download(repo_id, name, revision=sha)))


def _load_small_json(path: Path, *, repo_id: str, name: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise HubError(
            f"{repo_id}: {name} is not valid UTF-8 JSON.", code="adapter_config_invalid"
        ) from None


def _remote_header(metadata: Any, *, file_size: int, label: str) -> SafetensorsInfo:
    """Validate a header read by huggingface_hub like a local one. The header's own length is
    not exposed, so it is taken as what the file holds besides the tensor data."""
    header: dict[str, Any] = {
        name: {
            "dtype": tensor.dtype,
            "shape": list(tensor.shape),
            "data_offsets": list(tensor.data_offsets),
        }
        for name, tensor in metadata.tensors.items()
    }
    if metadata.metadata:
        header["__metadata__"] = dict(metadata.metadata)
    data_end = max((tensor.data_offsets[1] for tensor in metadata.tensors.values()), default=0)
    return validate_safetensors_header(
        header, header_size=max(file_size - 8 - data_end, 0), file_size=file_size, label=label
    )


def _is_hidden(relpath: str) -> bool:
    return any(part.startswith(".") for part in PurePosixPath(relpath).parts)
