"""Confinement: client-supplied paths and the files of an artefact stay inside given roots."""

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import unquote

from pedigree_client.artefacts.errors import ArtefactError, brief
from pedigree_client.artefacts.safetensors import refuse_pickle_suffix


def resolve_inside_roots(
    raw: str, roots: Sequence[Path], *, areas: Sequence[Path] | None = None
) -> Path:
    """Turn a client-supplied path into an existing path inside one of `roots`.

    The input is percent-decoded until stable; relative paths are taken from the first root.
    Symlinks are resolved before the containment check, so a link cannot lead outside.
    With `areas` (folders inside the roots), the path must also lie inside one of them, checked
    before the filesystem is touched and again once resolved; anything else is refused with
    code `not_in_area` whether or not it exists, so nothing about it can be learned.
    """
    if not roots:
        raise ArtefactError(
            "No artefact roots are configured; set PEDIGREE_ARTEFACT_ROOTS on the server.",
            code="no_roots",
        )
    decoded = _percent_decode(raw)
    if not decoded.strip():
        raise ArtefactError(
            "The artefact path is empty; give a path inside the artefact roots.",
            code="empty_path",
        )
    if "\x00" in decoded:
        raise ArtefactError("The artefact path contains a NUL byte; remove it.", code="nul_in_path")
    candidate = Path(decoded)
    if ".." in candidate.parts:
        raise ArtefactError(
            f"The artefact path {brief(raw)} contains '..'; give a path inside the artefact roots "
            "without parent-directory steps.",
            code="parent_traversal",
        )
    given_roots = [Path(root).absolute() for root in roots]
    resolved_roots = [Path(root).resolve() for root in roots]
    # Refuse absolute paths outside the roots before touching the filesystem, so a client
    # cannot probe which paths exist elsewhere on the server.
    if candidate.is_absolute() and not any(
        candidate.is_relative_to(root) for root in (*given_roots, *resolved_roots)
    ):
        raise _outside_roots(raw)
    target = candidate if candidate.is_absolute() else given_roots[0] / candidate
    area_forms = (
        None
        if areas is None
        else [form for area in areas for form in (Path(area).absolute(), Path(area).resolve())]
    )
    if area_forms is not None and not any(target.is_relative_to(a) for a in area_forms):
        raise _not_in_area(raw)
    try:
        resolved = target.resolve(strict=True)
    except FileNotFoundError:
        raise ArtefactError(
            f"Nothing exists at {brief(raw)} inside the artefact roots; check the path, or upload "
            "the artefact first.",
            code="missing_file",
        ) from None
    except (OSError, RuntimeError):  # symlink loops, over-long names, permissions
        raise ArtefactError(
            f"The artefact path {brief(raw)} cannot be resolved (symlink loop, name too long "
            "or no permission); give a plain path to a readable file or folder.",
            code="invalid_path",
        ) from None
    if not any(resolved.is_relative_to(root) for root in resolved_roots):
        raise _outside_roots(raw)
    if area_forms is not None and not any(resolved.is_relative_to(a) for a in area_forms):
        raise _not_in_area(raw)
    return resolved


def list_files(base: Path, *, exclude: Callable[[str], bool] | None) -> list[tuple[str, Path]]:
    """(relative posix path, path) of every visible, not excluded file, sorted by path."""
    if not base.exists():
        raise ArtefactError(f"{base.name} does not exist; check the path.", code="missing_file")
    if not base.is_dir():
        if exclude is not None and exclude(base.name):
            return []
        _check_file_name(base.name)
        refuse_pickle_suffix(base.name, label=base.name)
        return [(base.name, base)]

    def fail(error: OSError) -> None:
        raise ArtefactError(
            f"{os.path.relpath(error.filename, base)} cannot be listed ({error.strerror}); "
            "make it readable.",
            code="unreadable_file",
        )

    found = []
    for folder, dirnames, filenames in os.walk(base, onerror=fail):
        dirnames[:] = [name for name in dirnames if not name.startswith(".")]
        for dirname in dirnames:
            # os.walk does not follow these; refusing beats silently leaving files out.
            if Path(folder, dirname).is_symlink():
                raise ArtefactError(
                    f"{Path(folder, dirname).relative_to(base).as_posix()} is a symlink to a "
                    "folder; copy the folder in instead.",
                    code="symlinked_directory",
                )
        for filename in filenames:
            if filename.startswith("."):
                continue
            file = Path(folder, filename)
            relpath = file.relative_to(base).as_posix()
            if exclude is not None and exclude(relpath):
                continue
            _check_file_name(relpath)
            refuse_pickle_suffix(filename, label=relpath)
            found.append((relpath, file))
    return sorted(found)


def locate(file: Path, relpath: str, boundaries: Sequence[Path]) -> tuple[Path, int]:
    """Resolve a listed file and check it is a regular file inside `boundaries`; return
    (resolved path, size)."""
    try:
        resolved = file.resolve(strict=False)
    except (OSError, RuntimeError):
        raise ArtefactError(
            f"{relpath} cannot be resolved (symlink loop or no permission); replace it with a "
            "plain file.",
            code="invalid_path",
        ) from None
    # Confined before anything is learnt about the target, even whether it exists.
    if not any(resolved.is_relative_to(boundary) for boundary in boundaries):
        raise ArtefactError(
            f"{relpath} is a symlink to a file outside the artefact roots; copy the file in "
            "instead of linking to it.",
            code="outside_roots",
        )
    try:
        status = resolved.stat()
    except FileNotFoundError:
        raise ArtefactError(
            f"{relpath} is a broken symlink; point it at a file or remove it.",
            code="missing_file",
        ) from None
    except (OSError, RuntimeError):
        raise ArtefactError(
            f"{relpath} cannot be resolved (symlink loop or no permission); replace it with a "
            "plain file.",
            code="invalid_path",
        ) from None
    # A FIFO or device would block or never end when hashed.
    if not stat.S_ISREG(status.st_mode):
        raise ArtefactError(
            f"{relpath} is not a regular file; replace it with a plain file.",
            code="not_a_regular_file",
        )
    return resolved, status.st_size


def _check_file_name(relpath: str) -> None:
    # The manifest digest joins names with tabs and newlines, so those must not occur in names.
    try:
        relpath.encode("utf-8")
    except UnicodeEncodeError:
        valid = False
    else:
        valid = not any(ord(char) < 32 or char == "\x7f" for char in relpath)
    if not valid:
        raise ArtefactError(
            f"{brief(relpath)} has control characters or invalid UTF-8 in its name; rename it.",
            code="invalid_file_name",
        )


def _percent_decode(raw: str) -> str:
    # Decode until stable so double-encoded input (%252e%252e -> %2e%2e -> ..) cannot slip past
    # the checks. Each change shortens the string, so this ends.
    decoded = unquote(raw)
    while decoded != raw:
        raw, decoded = decoded, unquote(decoded)
    return decoded


def _not_in_area(raw: str) -> ArtefactError:
    return ArtefactError(
        f"Nothing you may read exists at {brief(raw)}; name a path inside your team's area "
        "(teams/<team>/ under an artefact root), and uploads by their id.",
        code="not_in_area",
    )


def _outside_roots(raw: str) -> ArtefactError:
    return ArtefactError(
        f"The artefact path {brief(raw)} is outside the artefact roots (symlinks are resolved); "
        "place the artefact under a configured root and give its path relative to it.",
        code="outside_roots",
    )
