"""The artefact store, reached only through Django's storage API (`STORAGES["artefacts"]`).

By default it is a folder on this machine (`ArtefactStore`, the first artefact root); with
`PEDIGREE_ARTEFACT_STORAGE=s3` it is a bucket that web processes and workers on several
machines share. Inspection, hashing and evaluation read local files, so on a filesystem storage
they use the stored files in place and on a remote one a local copy: uploads are received into
a private temporary folder and saved through the storage once inspected, and stored files are
copied to a temporary folder for as long as they are read.
"""

import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.core.signals import setting_changed
from django.utils.functional import cached_property

ALIAS = "artefacts"
# Copies between the storage and local files go in chunks this size, so memory stays flat.
COPY_CHUNK_SIZE = 1024 * 1024


class ArtefactStore(FileSystemStorage):
    """A FileSystemStorage at `settings.ARTEFACT_STORE`, the first artefact root, so uploaded
    files are also server paths inside the roots; it follows the setting when that changes."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        setting_changed.connect(self._follow_artefact_store)

    @cached_property
    def base_location(self) -> str:
        return str(settings.ARTEFACT_STORE)

    def _follow_artefact_store(self, *, setting: str, **kwargs: Any) -> None:
        if setting == "ARTEFACT_STORE":
            self.__dict__.pop("base_location", None)
            self.__dict__.pop("location", None)


def artefact_storage() -> Storage:
    return storages[ALIAS]


def local_path(name: str) -> Path | None:
    """Where `name` lies on this machine; None when the storage is remote."""
    storage = artefact_storage()
    # Only a filesystem storage's paths are real: others lack path() or, like InMemoryStorage,
    # return names that exist nowhere on disk.
    return Path(storage.path(name)) if isinstance(storage, FileSystemStorage) else None


def artefact_uri(name: str) -> str:
    """How the catalogue records stored files: a `file://` URI on a filesystem storage, else
    `storage://artefacts/<name>` (a remote storage's URLs may be signed and expire)."""
    local = local_path(name)
    return local.as_uri() if local is not None else f"storage://{ALIAS}/{name}"


def receiving_folder(name: str) -> Path:
    """The local folder the files of the upload stored as `name` are written to as they arrive:
    the stored folder itself on a filesystem storage (no copy of large weights), else a
    temporary folder that `store_received` saves through the storage."""
    local = local_path(name)
    if local is not None:
        return local
    staging = Path(settings.FILE_UPLOAD_TEMP_DIR or tempfile.gettempdir())
    return staging / f"pedigree-{name.replace('/', '-')}"


def store_received(name: str, relpaths: Iterable[str]) -> None:
    """Save the received (and inspected) files of an upload under `name` in the storage."""
    if local_path(name) is not None:
        return  # received in place
    folder = receiving_folder(name)
    storage = artefact_storage()
    for relpath in relpaths:
        with folder.joinpath(relpath).open("rb") as stream:
            storage.save(f"{name}/{relpath}", File(stream))
    shutil.rmtree(folder, ignore_errors=True)


def discard(name: str) -> None:
    """Delete whatever an upload left, received or stored: nothing half-uploaded stays."""
    shutil.rmtree(receiving_folder(name), ignore_errors=True)
    if local_path(name) is None:
        _delete_tree(artefact_storage(), name)


def holds(name: str) -> bool:
    """Whether any file is stored under the folder `name`."""
    try:
        directories, files = artefact_storage().listdir(name)
    except FileNotFoundError:
        return False
    return bool(directories or files)


@contextmanager
def local_copy(name: str, relpaths: Iterable[str]) -> Iterator[Path]:
    """The stored folder `name` as a local folder holding `relpaths`: in place on a filesystem
    storage, else a temporary copy, removed on exit."""
    local = local_path(name)
    if local is not None:
        yield local
        return
    storage = artefact_storage()
    with tempfile.TemporaryDirectory(
        prefix="pedigree-artefact-", dir=settings.FILE_UPLOAD_TEMP_DIR, ignore_cleanup_errors=True
    ) as staging:
        for relpath in relpaths:
            target = Path(staging, relpath)
            target.parent.mkdir(parents=True, exist_ok=True)
            with storage.open(f"{name}/{relpath}", "rb") as source, target.open("xb") as copy:
                shutil.copyfileobj(source, copy, COPY_CHUNK_SIZE)
        yield Path(staging)


def _delete_tree(storage: Storage, name: str) -> None:
    try:
        directories, files = storage.listdir(name)
    except FileNotFoundError:
        return
    for file in files:
        storage.delete(f"{name}/{file}")
    for directory in directories:
        _delete_tree(storage, f"{name}/{directory}")
