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
is refused. No database access here; `registry.services.upstream_import` records the result.
"""

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, Protocol
from urllib.parse import urlparse

import yaml
from huggingface_hub import HfApi, ModelCard, constants, snapshot_download
from huggingface_hub.errors import (
    GatedRepoError,
    HFValidationError,
    IncompleteSnapshotError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.utils import validate_repo_id

from pedigree_client.artefacts import (
    CONVERT_HINT,
    PICKLE_SUFFIXES,
    ArtefactFile,
    ArtefactManifest,
    ArtefactProgress,
    classify_file,
    inspect_artefact,
    manifest_from_files,
    read_adapter_config,
    sha256_file,
    validate_safetensors_header,
)

REVISION_SHA = re.compile(r"^[0-9a-f]{40}$")
# Branch, tag or commit; `..` is refused separately (a ref names a file under the cache's refs/).
_REVISION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,254}$")
CARD_FILE = "README.md"
_ADAPTER_CONFIG = "adapter_config.json"
# Cards are a few KiB; a cap keeps a hostile README from filling the database.
MAX_CARD_SIZE = 1_000_000
# Files the Hub keeps outside LFS are small (it requires LFS above 10 MB).
MAX_SMALL_FILE_SIZE = 50_000_000

ErrorKind = Literal["invalid", "not_found", "forbidden", "unavailable"]


class HubError(Exception):
    """An upstream model could not be read. `kind` picks the HTTP status family."""

    def __init__(self, message: str, *, code: str, kind: ErrorKind = "invalid") -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.kind = kind


# --- licences ----------------------------------------------------------------------------------


class HubLicenceResult(Protocol):
    expression: str
    review_required: bool
    reason: str


class LicenceResolver(Protocol):
    """Maps a card's `license` (plus `license_name`/`license_link` for `other`) to an SPDX
    expression; raises ValueError, with a message saying what to do, for an unknown id."""

    def __call__(
        self, hub_id: str, *, license_name: str | None, license_link: str | None
    ) -> HubLicenceResult: ...


# Set by `licensing.apps.LicensingConfig.ready()` to the licence catalogue's mapping; registry
# does not import licensing (the dependency goes the other way).
LICENCE_RESOLVER: LicenceResolver | None = None

# Used only while no resolver is registered: the common Hub ids and their SPDX spelling.
_BUILT_IN_LICENCES = {
    spdx.lower(): spdx
    for spdx in (
        "Apache-2.0",
        "MIT",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "CC0-1.0",
        "CC-BY-4.0",
        "CC-BY-SA-4.0",
        "CC-BY-NC-4.0",
        "MPL-2.0",
        "Unlicense",
    )
}


@dataclass(frozen=True)
class LicenceMapping:
    hub_id: str
    expression: str
    review_required: bool
    reason: str
    license_name: str | None
    license_link: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "hub_id": self.hub_id,
            "expression": self.expression,
            "review_required": self.review_required,
            "reason": self.reason,
            "license_name": self.license_name,
            "license_link": self.license_link,
        }


# --- model cards -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CardInfo:
    """A model card: the raw text and the metadata fields Pedigree records."""

    content: str
    metadata: dict[str, Any]
    license: str | None
    license_name: str | None
    license_link: str | None
    base_models: list[str]
    base_model_relation: str | None
    datasets: list[str]
    pipeline_tag: str | None
    library_name: str | None
    tags: list[str]
    gated: bool


def parse_card(content: str, *, repo_id: str) -> CardInfo:
    """Parse a model card's YAML metadata with `huggingface_hub.ModelCard`, checking the types
    of the fields Pedigree relies on."""
    try:
        # YAML dates and the like become strings, so the metadata can be stored as JSON.
        metadata = json.loads(json.dumps(ModelCard(content).data.to_dict(), default=str))
    except (yaml.YAMLError, ValueError, TypeError) as error:
        raise HubError(
            f"The model card of {repo_id} has invalid YAML metadata ({_first_line(error)}); "
            "fix the block between the '---' lines at the top of README.md.",
            code="card_invalid",
        ) from None

    def text(key: str) -> str | None:
        value = metadata.get(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise _card_field_error(repo_id, key, "a string")
        return value.strip() or None

    def names(key: str) -> list[str]:
        value = metadata.get(key)
        if value is None:
            return []
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list) or not all(
            isinstance(item, str) and item.strip() for item in values
        ):
            raise _card_field_error(repo_id, key, "a string or a list of strings")
        return list(dict.fromkeys(item.strip() for item in values))

    datasets = names("datasets")
    base_models = names("base_model")
    for key, ids in (("datasets", datasets), ("base_model", base_models)):
        for hub_id in ids:
            try:
                validate_repo_id(hub_id)
            except HFValidationError:
                raise HubError(
                    f"The model card of {repo_id} names {hub_id!r} in `{key}`, which is not a "
                    "Hugging Face Hub id (like 'owner/name'); fix the card's metadata.",
                    code="card_invalid",
                ) from None
    return CardInfo(
        content=content,
        metadata=metadata,
        license=text("license"),
        license_name=text("license_name"),
        license_link=text("license_link"),
        base_models=base_models,
        base_model_relation=text("base_model_relation"),
        datasets=datasets,
        pipeline_tag=text("pipeline_tag"),
        library_name=text("library_name"),
        tags=names("tags"),
        gated=any(key.startswith("extra_gated") for key in metadata),
    )


def resolve_licence(card: CardInfo, *, repo_id: str) -> LicenceMapping:
    """The card's licence as an SPDX expression. A card without one is refused: Pedigree would
    not know which obligations the model carries."""
    if card.license is None:
        raise HubError(
            f"The model card of {repo_id} declares no licence (no `license:` in its metadata), "
            "so the obligations it carries are unknown; ask the publisher to add one, or pick a "
            "revision whose card has one.",
            code="licence_missing",
        )
    if LICENCE_RESOLVER is not None:
        try:
            result = LICENCE_RESOLVER(
                card.license, license_name=card.license_name, license_link=card.license_link
            )
        except ValueError as error:
            raise HubError(
                f"The model card of {repo_id} declares licence {card.license!r}: {error}",
                code="licence_unknown",
            ) from None
        expression, review, reason = result.expression, result.review_required, result.reason
    else:
        expression = _BUILT_IN_LICENCES.get(card.license.lower())
        if expression is None:
            raise HubError(
                f"The model card of {repo_id} declares licence {card.license!r}, an unknown "
                f"licence id; known ids: {', '.join(sorted(_BUILT_IN_LICENCES))}.",
                code="licence_unknown",
            )
        review, reason = False, f"Hub licence {card.license!r} is {expression}."
    return LicenceMapping(
        hub_id=card.license,
        expression=expression,
        review_required=review,
        reason=reason,
        license_name=card.license_name,
        license_link=card.license_link,
    )


# --- snapshots ---------------------------------------------------------------------------------


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
        pinned = _snapshot_revision(snapshot_dir, repo_id=repo_id, given=revision)
        return _read_folder(
            repo_id,
            snapshot_dir,
            revision=pinned,
            boundary=_cache_repo_folder(snapshot_dir) or snapshot_dir,
            source="snapshot_dir",
            progress=progress,
        )
    if is_offline():
        folder = _cached_snapshot(repo_id, revision)
        return _read_folder(
            repo_id,
            folder,
            revision=folder.name,
            boundary=folder.parent.parent,
            source="cache",
            progress=progress,
        )
    return _read_remote(repo_id, revision, allowed_hosts=allowed_hosts, progress=progress)


def _read_folder(
    repo_id: str,
    folder: Path,
    *,
    revision: str,
    boundary: Path,
    source: str,
    progress: ArtefactProgress | None,
) -> HubSnapshot:
    card = parse_card(_read_card(folder / CARD_FILE, repo_id=repo_id), repo_id=repo_id)
    excluded: list[str] = []

    def exclude(relpath: str) -> bool:
        if _is_pickle(relpath):
            excluded.append(relpath)
            return True
        return False

    # An HF cache snapshot is a folder of symlinks into the repository's blobs/ folder.
    manifest = inspect_artefact(folder, roots=[boundary], progress=progress, exclude=exclude)
    return HubSnapshot(
        repo_id=repo_id,
        revision=revision,
        card=card,
        manifest=manifest,
        excluded=sorted(excluded),
        source=source,
        location=str(folder),
        gated=card.gated,
        url=repo_url(repo_id, revision),
    )


def _read_card(path: Path, *, repo_id: str) -> str:
    if not path.is_file():
        raise HubError(
            f"The snapshot of {repo_id} has no model card ({CARD_FILE}), so its licence and "
            "datasets are unknown; include README.md from the repository.",
            code="card_missing",
        )
    if path.stat().st_size > MAX_CARD_SIZE:
        raise HubError(
            f"The model card of {repo_id} is larger than {MAX_CARD_SIZE} bytes; it cannot be a "
            "real model card.",
            code="card_invalid",
        )
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise HubError(
            f"The model card of {repo_id} is not UTF-8 text; re-save README.md as UTF-8.",
            code="card_invalid",
        ) from None


def _snapshot_revision(folder: Path, *, repo_id: str, given: str | None) -> str:
    """The commit a local snapshot holds: from its place in an HF cache (`snapshots/<sha>`),
    else from the download metadata `hf download --local-dir` writes, else as given."""
    found: set[str] = set()
    if _cache_repo_folder(folder) is not None:
        expected = repo_folder_name(repo_id=repo_id, repo_type="model")
        if folder.parent.parent.name != expected:
            raise HubError(
                f"{folder} is a cached snapshot of another repository "
                f"({folder.parent.parent.name}), not of {repo_id}.",
                code="snapshot_repo_mismatch",
            )
        found.add(folder.name)
    metadata_folder = folder / ".cache" / "huggingface" / "download"
    if metadata_folder.is_dir():
        for metadata in metadata_folder.rglob("*.metadata"):
            first_line = metadata.read_text(encoding="utf-8", errors="replace").split("\n", 1)[0]
            if REVISION_SHA.match(first_line.strip()):
                found.add(first_line.strip())
    if len(found) > 1:
        raise HubError(
            f"The files in {folder} come from several revisions ({', '.join(sorted(found))}); "
            "download one revision into an empty folder.",
            code="snapshot_mixed_revisions",
        )
    detected = found.pop() if found else None
    if given is not None and not REVISION_SHA.match(given):
        raise HubError(
            f"With a snapshot folder, give the revision as its full 40-character commit SHA, "
            f"not {given!r}: a branch or tag cannot be checked offline.",
            code="hub_revision_invalid",
        )
    if detected and given and detected != given:
        raise HubError(
            f"The snapshot in {folder} is revision {detected}, not {given}; check the folder "
            "or the revision.",
            code="snapshot_revision_mismatch",
        )
    revision = detected or given
    if revision is None:
        raise HubError(
            f"Cannot tell which revision of {repo_id} the folder {folder} holds (it has no "
            "Hugging Face download metadata); pass the commit SHA it was downloaded at with "
            "--revision (the 'revision' field in the API).",
            code="revision_required",
        )
    return revision


def _cache_repo_folder(folder: Path) -> Path | None:
    """The repository folder of a path shaped like an HF cache snapshot (.../snapshots/<sha>)."""
    if folder.parent.name == "snapshots" and REVISION_SHA.match(folder.name):
        return folder.parent.parent
    return None


def _cached_snapshot(repo_id: str, revision: str | None) -> Path:
    wanted = revision or "main"
    try:
        folder = snapshot_download(
            repo_id, revision=wanted, cache_dir=cache_dir(), local_files_only=True
        )
    except IncompleteSnapshotError as error:
        raise HubError(
            f"The cached snapshot of {repo_id}@{wanted} is incomplete ({_first_line(error)}); "
            "finish the download where the Hub is reachable.",
            code="hub_snapshot_incomplete",
        ) from None
    except LocalEntryNotFoundError:
        raise HubError(
            f"{repo_id}@{wanted} is not in the local Hugging Face cache ({cache_dir()}) and "
            "HF_HUB_OFFLINE=1 keeps Pedigree off the Hub; download it first "
            f"(`hf download {repo_id} --revision {wanted}`) or give a snapshot folder.",
            code="hub_not_cached",
            kind="not_found",
        ) from None
    return Path(folder)


def _is_pickle(relpath: str) -> bool:
    return PurePosixPath(relpath).suffix.lower() in PICKLE_SUFFIXES


def _is_hidden(relpath: str) -> bool:
    return any(part.startswith(".") for part in PurePosixPath(relpath).parts)


# --- the Hub, metadata only --------------------------------------------------------------------


def check_endpoint(allowed_hosts: list[str]) -> None:
    host = urlparse(constants.ENDPOINT).hostname or ""
    if host not in allowed_hosts:
        raise HubError(
            f"The Hub endpoint {constants.ENDPOINT} is not allowed; its host must be in "
            f"PEDIGREE_HUB_ALLOWED_HOSTS ({', '.join(allowed_hosts) or 'empty'}).",
            code="hub_host_not_allowed",
            kind="forbidden",
        )


def _read_remote(
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
    excluded = sorted(s.rfilename for s in siblings if _is_pickle(s.rfilename))
    kept = [s for s in siblings if not _is_pickle(s.rfilename)]
    card_sibling = next((s for s in kept if s.rfilename == CARD_FILE), None)
    if card_sibling is None:
        raise HubError(
            f"{repo_id}@{sha} has no model card ({CARD_FILE}), so its licence and datasets are "
            "unknown.",
            code="card_missing",
        )
    card_path = _download_small(api, repo_id, sha, CARD_FILE, _sibling_size(card_sibling))
    card = parse_card(_read_card(card_path, repo_id=repo_id), repo_id=repo_id)
    total = sum(_sibling_size(s) for s in kept)
    files: list[ArtefactFile] = []
    adapter = None
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
        else:
            digest = sibling.lfs.sha256
        if kind == "weights":
            header = _call_hub(
                repo_id,
                sha,
                lambda name=name: api.parse_safetensors_file_metadata(repo_id, name, revision=sha),
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
            f"{_first_line(error)}); try again later.",
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


def _remote_header(metadata: Any, *, file_size: int, label: str):
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


def _card_field_error(repo_id: str, key: str, expected: str) -> HubError:
    return HubError(
        f"The model card of {repo_id} has `{key}` that is not {expected}; fix its metadata.",
        code="card_invalid",
    )


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
