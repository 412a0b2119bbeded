"""SHA-256 of files, read in fixed chunks so memory stays flat whatever the file size."""

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from pedigree_client.artefacts.reading import open_for_reading

# 1 MiB keeps the buffer in cache while amortising the per-call overhead of readinto/update.
HASH_CHUNK_SIZE = 1024 * 1024


def sha256_file(path: Path | str, *, progress: Callable[[int], None] | None = None) -> str:
    """Return the lowercase hex SHA-256 of a file, reading it in fixed chunks (flat memory).

    `progress`, if given, is called after each chunk with the number of bytes read so far.
    """
    return hash_file(Path(path), progress=progress)[0]


def hash_file(path: Path, *, progress: Callable[[int], None] | None) -> tuple[str, int]:
    digest = hashlib.sha256()
    buffer = bytearray(HASH_CHUNK_SIZE)
    view = memoryview(buffer)
    done = 0
    # Unbuffered: readinto then fills our buffer straight from the kernel, with no extra copy.
    with open_for_reading(path, label=path.name, unbuffered=True) as stream:
        if hasattr(os, "posix_fadvise"):
            # Lets the kernel read ahead further, which matters when the file is not cached.
            os.posix_fadvise(stream.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
        while read := stream.readinto(view):
            digest.update(view[:read])
            done += read
            if progress is not None:
                progress(done)
    return digest.hexdigest(), done
