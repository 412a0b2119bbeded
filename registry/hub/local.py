"""Reading an upstream revision from a local snapshot folder or the local Hugging Face cache."""

import json
from pathlib import Path

from huggingface_hub import snapshot_download
from huggingface_hub.errors import IncompleteSnapshotError, LocalEntryNotFoundError
from huggingface_hub.file_download import repo_folder_name

from pedigree_client.artefacts import ArtefactManifest, ArtefactProgress, inspect_artefact
from registry.hub.cards import CARD_FILE, parse_card, read_card
from registry.hub.errors import HubError, first_line
from registry.hub.relations import quantization_method_of
from registry.hub.snapshot import REVISION_SHA, HubSnapshot, cache_dir, is_pickle, repo_url

_CONFIG_FILE = "config.json"
MAX_CONFIG_SIZE = 1_000_000


def read_snapshot_dir(
    repo_id: str, folder: Path, *, revision: str | None, progress: ArtefactProgress | None
) -> HubSnapshot:
    """A folder holding one revision: an HF cache snapshot or one `hf download --local-dir`
    wrote; `revision` is checked against what the folder says it holds."""
    return _read_folder(
        repo_id,
        folder,
        revision=_snapshot_revision(
            folder, repo_id=repo_id, given=revision, boundary=_cache_repo_folder(folder) or folder
        ),
        boundary=_cache_repo_folder(folder) or folder,
        source="snapshot_dir",
        progress=progress,
    )


def read_cached(
    repo_id: str, revision: str | None, *, progress: ArtefactProgress | None
) -> HubSnapshot:
    """`revision` (default main) from the local Hugging Face cache."""
    folder = _cached_snapshot(repo_id, revision)
    return _read_folder(
        repo_id,
        folder,
        revision=folder.name,
        boundary=folder.parent.parent,
        source="cache",
        progress=progress,
    )


def _read_folder(
    repo_id: str,
    folder: Path,
    *,
    revision: str,
    boundary: Path,
    source: str,
    progress: ArtefactProgress | None,
) -> HubSnapshot:
    card_file = _confined(folder / CARD_FILE, boundary)
    card = parse_card(read_card(card_file, repo_id=repo_id), repo_id=repo_id)
    excluded: list[str] = []

    def exclude(relpath: str) -> bool:
        if is_pickle(relpath):
            excluded.append(relpath)
            return True
        return False

    # An HF cache snapshot is a folder of symlinks into the repository's blobs/ folder.
    # A GGUF-only repository (a llama.cpp quantization) imports with its headers validated.
    manifest = inspect_artefact(
        folder, roots=[boundary], progress=progress, exclude=exclude, allow_gguf=True
    )
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
        quantization_method=_quantization_method(folder, manifest),
    )


def _quantization_method(folder: Path, manifest: ArtefactManifest) -> str | None:
    """From config.json, read only once the manifest has checked it lies inside the snapshot."""
    config = next((f for f in manifest.files if f.path == _CONFIG_FILE), None)
    if config is None or config.size > MAX_CONFIG_SIZE:
        return None
    try:
        return quantization_method_of(json.loads((folder / _CONFIG_FILE).read_bytes()))
    except (OSError, ValueError):
        return None


def _confined(path: Path, boundary: Path) -> Path:
    """`path` resolved, if it stays inside `boundary`: checked before the file is opened, so a
    README.md or download metadata symlinked out of the folder is never read or echoed."""
    resolved = path.resolve()
    if not resolved.is_relative_to(boundary.resolve()):
        raise HubError(
            f"{path.name} in the snapshot folder is a symlink leading out of it; copy the file "
            "in instead of linking to it.",
            code="outside_roots",
        )
    return resolved


def _snapshot_revision(folder: Path, *, repo_id: str, given: str | None, boundary: Path) -> str:
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
            first_line = (
                _confined(metadata, boundary)
                .read_text(encoding="utf-8", errors="replace")
                .split("\n", 1)[0]
            )
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


def dataset_caches(folder: Path | None) -> list[Path]:
    """Where the cards of a model's training datasets may be cached: the Hugging Face cache a
    snapshot folder lies in (when it is one), then the server's own cache."""
    repo = _cache_repo_folder(folder) if folder is not None else None
    caches = [repo.parent] if repo is not None and repo.name.startswith("models--") else []
    return [*caches, cache_dir()]


def _cached_snapshot(repo_id: str, revision: str | None) -> Path:
    wanted = revision or "main"
    try:
        folder = snapshot_download(
            repo_id, revision=wanted, cache_dir=cache_dir(), local_files_only=True
        )
    except IncompleteSnapshotError as error:
        raise HubError(
            f"The cached snapshot of {repo_id}@{wanted} is incomplete ({first_line(error)}); "
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
