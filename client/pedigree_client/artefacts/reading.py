"""Opening untrusted files and parsing untrusted JSON strictly."""

import io
import json
from pathlib import Path
from typing import Any

from pedigree_client.artefacts.errors import ArtefactError, brief

Readable = io.FileIO | io.BufferedReader


def open_for_reading(path: Path, *, label: str, unbuffered: bool = False) -> Readable:
    try:
        return path.open("rb", buffering=0) if unbuffered else path.open("rb")
    except FileNotFoundError:
        raise ArtefactError(
            f"{label} does not exist; check the path.", code="missing_file"
        ) from None
    except OSError as error:
        raise ArtefactError(
            f"{label} cannot be read ({error.strerror}); make it a readable regular file.",
            code="unreadable_file",
        ) from None


class DuplicateKeyError(ValueError):
    pass


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DuplicateKeyError(brief(key))
        result[key] = value
    return result


def _reject_constant(token: str) -> Any:
    raise ValueError(f"{token} is not valid JSON")


def parse_json(text: str) -> Any:
    """Strict JSON: no duplicate keys, no NaN/Infinity, no stack exhaustion from deep nesting."""
    try:
        return json.loads(
            text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant
        )
    except RecursionError:
        raise ValueError("nested too deeply") from None
