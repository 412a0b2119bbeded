"""Artefact uploads: files are validated and hashed here first, then streamed to the server,
which must compute the same digest. Progress is a bar on a terminal, plain lines elsewhere."""

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO, cast

from pedigree_client.api import ApiClient
from pedigree_client.artefacts import ArtefactError, ArtefactManifest, inspect_artefact
from pedigree_client.errors import InvalidInput, PedigreeError
from pedigree_client.output import Progress

# Hashing a large upload on the server takes a while after the last byte is sent.
UPLOAD_READ_TIMEOUT = 3600


def inspect_locally(path: Path) -> ArtefactManifest:
    """Validate and hash an artefact on this machine, showing hashing progress."""
    with Progress(f"Hashing {path.name}") as bar:

        def progress(relpath: str, done: int, total: int) -> None:
            bar.update(done, total=total)

        try:
            return inspect_artefact(path, progress=progress)
        except ArtefactError as error:
            raise InvalidInput(None, error.code, f"{path}: {error.message}") from None


class MultipartBody:
    """A multipart/form-data body read from the files while it is sent: memory stays flat
    whatever their size. Each part is named by the file's path relative to the artefact.
    `seek(0)` starts it again, for a retried request."""

    def __init__(self, files: list[tuple[str, Path]], *, on_read: Callable[[int], None]):
        boundary = secrets.token_hex(16)
        self.content_type = f"multipart/form-data; boundary={boundary}"
        self._parts: list[bytes | Path] = []
        for name, file in files:
            if any(char in name for char in '"\r\n\\'):
                raise InvalidInput(
                    None,
                    "invalid_name",
                    f"Cannot upload {name!r}: rename it without quotes or backslashes.",
                )
            head = (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="{name}"; filename="{file.name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            )
            self._parts += [head.encode(), file, b"\r\n"]
        self._parts.append(f"--{boundary}--\r\n".encode())
        self._length = sum(
            len(part) if isinstance(part, bytes) else part.stat().st_size for part in self._parts
        )
        self._on_read = on_read
        self._sent = 0
        self.seek(0)

    def __len__(self) -> int:
        return self._length

    def seek(self, offset: int) -> None:
        if offset != 0:
            raise ValueError("a multipart body can only start again from 0")
        self._chunks = self._iterate()
        self._chunk = b""
        self._offset = 0
        self._on_read(-self._sent)
        self._sent = 0

    def _iterate(self) -> Iterator[bytes]:
        for part in self._parts:
            if isinstance(part, bytes):
                yield part
                continue
            stream: BinaryIO
            with part.open("rb") as stream:
                while chunk := stream.read(1024 * 1024):
                    yield chunk

    def read(self, size: int = -1) -> bytes:
        pieces = []
        wanted = size
        while wanted != 0:
            if self._offset == len(self._chunk):
                self._chunk, self._offset = next(self._chunks, b""), 0
                if not self._chunk:
                    break
            end = len(self._chunk) if wanted < 0 else min(len(self._chunk), self._offset + wanted)
            # Only the bytes handed out are copied, never the rest of the chunk.
            pieces.append(self._chunk[self._offset : end])
            wanted = wanted if wanted < 0 else wanted - (end - self._offset)
            self._offset = end
        data = b"".join(pieces)
        self._sent += len(data)
        self._on_read(len(data))
        return data


def upload_artefact(
    client: ApiClient, path: Path, *, manifest: ArtefactManifest | None = None
) -> str:
    """Stream `path` (a file or a folder) to the server and check that both sides computed
    the same digest; `manifest` is the local inspection when already done. Returns the upload
    id to register a version from."""
    path = Path(path)
    manifest = manifest or inspect_locally(path)
    base = path if path.is_dir() else path.parent
    files = [(file.path, base / file.path) for file in manifest.files]
    with Progress(f"Uploading {path.name}") as bar:
        body = MultipartBody(files, on_read=bar.advance)
        bar.total = len(body)
        upload = client.request(
            "POST",
            "artefacts/uploads/",
            data=body,
            headers={"Content-Type": body.content_type},
            timeout=(client.timeout, UPLOAD_READ_TIMEOUT),
        )
    if upload["digest"] != manifest.digest:
        raise PedigreeError(
            None,
            "digest_mismatch",
            f"The server computed digest {upload['digest']} for upload {upload['id']}, but the "
            f"files here hash to {manifest.digest}: they changed during the upload or were "
            "corrupted on the way; upload again.",
        )
    return cast(str, upload["id"])
