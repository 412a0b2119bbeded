"""Where a version's artefact and a dataset version's file lie: uploaded files in the artefacts
storage, every other file confined to the artefact roots.

Locating writes nothing and reads no file contents, so the web process uses it to refuse a
request early; `verified_artefact_dir` and `verified_dataset_file` then hash the bytes on the
worker, right before evaluating, so a run is bound to the digests the catalogue records.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlparse

from django.conf import settings

from pedigree_client.artefacts import (
    PICKLE_SUFFIXES,
    ArtefactError,
    inspect_artefact,
    resolve_inside_roots,
    sha256_file,
)
from registry import hub, storage
from registry.models import ArtefactUpload, DatasetVersion, ModelVersion
from registry.selectors import team_areas

# Sources `registry.hub` reads from local folders; their files can be evaluated in place.
_LOCAL_HUB_SOURCES = ("snapshot_dir", "cache")


class SourceError(Exception):
    """The files cannot be used; the message says why and what to do."""


@dataclass(frozen=True)
class ArtefactLocation:
    path: Path
    roots: tuple[Path, ...]
    # Imported Hub snapshots were hashed without their pickle files (see registry.hub).
    skip_pickles: bool


def _roots() -> list[Path]:
    return [Path(root) for root in settings.ARTEFACT_ROOTS]


def _path_of(uri: str) -> str | None:
    """The local path a `file://` URI or a plain absolute path names; None for other URLs."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return unquote(parsed.path)
    if parsed.scheme == "" and uri.startswith("/"):
        return uri
    return None


def locate_artefact(version: ModelVersion) -> ArtefactLocation | ArtefactUpload:
    """Where `version`'s files lie: the upload it was registered from in the artefacts storage,
    else a folder inside the artefact roots (or, for an imported Hub snapshot, the local Hugging
    Face cache)."""
    if not version.artefact_manifest:
        raise SourceError(
            f"{version} was registered by digest only, so Pedigree holds no files to evaluate; "
            "register a version from its files (`pedigree register … --artefact PATH`)."
        )
    upload = ArtefactUpload.objects.filter(consumed_by=version).first()
    if upload is not None:
        if not storage.holds(upload.store_path):
            raise SourceError(
                f"The uploaded files of {version} are no longer in the artefact storage; upload "
                "them again and register a new version."
            )
        return upload
    # Paths a client named at registration are files on this server by nature, read in place.
    local = _path_of(version.artefact_uri)
    skip_pickles = False
    roots = _roots()
    if local is None:
        source = (version.hub_card or {}).get("source") or {}
        if source.get("kind") not in _LOCAL_HUB_SOURCES:
            raise SourceError(
                f"The files of {version} are not on this server (its artefact is "
                f"{version.artefact_uri or 'not recorded'}); import it from a local snapshot "
                "inside the artefact roots (`manage.py import_hf --snapshot-dir …`)."
            )
        local, skip_pickles = source.get("location", ""), True
        roots = [*roots, hub.cache_dir()]
    try:
        path = resolve_inside_roots(local, roots)
    except ArtefactError as error:
        raise SourceError(f"The files of {version} cannot be used: {error.message}") from None
    return ArtefactLocation(path=path, roots=tuple(roots), skip_pickles=skip_pickles)


@contextmanager
def verified_artefact_dir(version: ModelVersion, *, expected_digest: str) -> Iterator[Path]:
    """Hash `version`'s files and yield their folder if they are exactly `expected_digest`.

    Uploaded files on a remote storage are copied to a temporary folder, removed on exit.
    """
    location = locate_artefact(version)
    if isinstance(location, ArtefactUpload):
        relpaths = [file["path"] for file in location.manifest["files"]]
        with storage.local_copy(location.store_path, relpaths) as folder:
            yield _verified(version, folder, (folder,), expected_digest, skip_pickles=False)
        return
    if not location.path.is_dir():
        raise SourceError(
            f"The artefact of {version} is a single file; evaluators read a folder holding the "
            "weights with their configuration and tokenizer."
        )
    yield _verified(
        version, location.path, location.roots, expected_digest, skip_pickles=location.skip_pickles
    )


def _verified(
    version: ModelVersion,
    folder: Path,
    roots: tuple[Path, ...],
    expected_digest: str,
    *,
    skip_pickles: bool,
) -> Path:
    try:
        manifest = inspect_artefact(
            folder,
            roots=roots,
            exclude=(
                (lambda relpath: PurePosixPath(relpath).suffix.lower() in PICKLE_SUFFIXES)
                if skip_pickles
                else None
            ),
        )
    except ArtefactError as error:
        raise SourceError(f"The files of {version} cannot be used: {error.message}") from None
    if manifest.digest != expected_digest:
        raise SourceError(
            f"The files of {version} in {folder} now hash to {manifest.digest[:12]}…, not "
            f"the registered {expected_digest[:12]}…; they changed after registration, so they "
            "are not the weights this evaluation is about. Restore them or register a new "
            "version."
        )
    return folder


def locate_dataset(dataset_version: DatasetVersion) -> Path:
    """The file a dataset version's `uri` names, inside its team's area of the artefact roots
    (`teams/<team>/`), so a dataset of one team can never point at another team's files."""
    raw = dataset_version.uri.strip()
    local = _path_of(raw) if raw else None
    if local is None and raw and "://" not in raw:
        local = raw  # a path relative to the first artefact root
    if local is None:
        raise SourceError(
            f"Dataset {dataset_version} has no local file (uri {raw or 'empty'!r}); set its uri "
            "to a .csv, .jsonl or .parquet file inside the artefact roots "
            "(PATCH /api/v1/dataset-versions/{id}/)."
        )
    areas = team_areas([dataset_version.dataset.team.slug])
    try:
        path = resolve_inside_roots(local, _roots(), areas=areas)
    except ArtefactError as error:
        raise SourceError(
            f"The file of dataset {dataset_version} cannot be used: {error.message}"
        ) from None
    if not path.is_file():
        raise SourceError(f"The uri of dataset {dataset_version} names a folder, not a file.")
    return path


def verified_dataset_file(dataset_version: DatasetVersion, *, expected_sha256: str) -> Path:
    path = locate_dataset(dataset_version)
    actual = sha256_file(path)
    if actual != expected_sha256:
        raise SourceError(
            f"The file of dataset {dataset_version} ({path.name}) hashes to {actual[:12]}…, not "
            f"the pinned {expected_sha256[:12]}…; register the changed file as a new dataset "
            "version and define a suite on it."
        )
    return path
