"""Checking the catalogue data file: its JSON Schema, then the cross-references a schema cannot
express (an id is an SPDX id or a LicenseRef, defined once; Hub ids and `license_name`s map to
catalogue licences).

Each problem names the path to the offending key (and the licence and term it lies in) and what
was expected: the failing schema's `description`, or its `title` for a vocabulary.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

SCHEMA_FILE = Path(__file__).with_name("ml_licences.schema.json")

_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "text",
    "boolean": "true or false",
    "integer": "an integer",
}


class CatalogueError(ValueError):
    """The catalogue data file is invalid: a defect to fix before release, not bad user input."""

    def __init__(self, problems: Sequence[str], *, source: str) -> None:
        self.problems = tuple(problems)
        super().__init__(f"Invalid licence catalogue {source}:\n- " + "\n- ".join(self.problems))


@functools.cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def catalogue_problems(raw: object, *, spdx_ids: Collection[str]) -> list[str]:
    """Every problem in catalogue data as parsed from the YAML, each once."""
    problems = [line for error in _validator().iter_errors(raw) for line in _explain(raw, error)]
    if isinstance(raw, Mapping):
        problems += _reference_problems(raw, spdx_ids)
    return list(dict.fromkeys(problems))


def _explain(raw: object, error: ValidationError) -> list[str]:
    path = list(error.absolute_path)
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    expected = schema.get("description")
    if "propertyNames" in error.relative_schema_path:
        return [f"{_where(raw, [*path, error.instance])}: {expected}"]
    where = _where(raw, path)
    prefix = f"{where}: " if where else ""
    # jsonschema types these as possibly unset; an error it reports always has them.
    instance: Any = error.instance
    wanted: Any = error.validator_value
    match error.validator:
        case "required":
            missing = [key for key in wanted if key not in instance]
            why = f" ({expected})" if expected else ""
            return [f"{prefix}missing {key!r}{why}" for key in missing]
        case "additionalProperties":
            unknown = sorted(set(instance) - set(schema.get("properties", {})), key=str)
            what = "key" if path else "top-level key"
            return [f"{prefix}unknown {what} {key!r}" for key in unknown]
        case "enum":
            allowed = ", ".join(map(str, wanted))
            return [f"{prefix}unknown {schema['title']} {instance!r} (one of {allowed})"]
        case "const":
            return [f"{prefix}must be {wanted!r}, got {_shown(instance)}"]
        case "type" if not expected:
            expected = f"must be {_TYPE_WORDS[wanted]}"
    return [f"{prefix}{expected or error.message}, got {_shown(instance)}"]


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:77]}..."


def _where(raw: object, path: Iterable[Any]) -> str:
    """`licences[3] (CC-BY-4.0).terms[0] (attribution).value`: the path, naming the licence and
    the term on it."""
    where, node = "", raw
    for key in path:
        where += f"[{key}]" if isinstance(key, int) else f".{key}" if where else str(key)
        node = node[key] if isinstance(node, Mapping | list) and _has(node, key) else None
        if isinstance(node, Mapping):
            where += "".join(f" ({node[name]})" for name in ("id", "type") if _named(node, name))
    return where


def _named(node: Mapping[Any, Any], name: str) -> bool:
    return isinstance(node.get(name), str) and bool(node[name])


def _has(node: Mapping[Any, Any] | list[Any], key: Any) -> bool:
    return key in node if isinstance(node, Mapping) else isinstance(key, int) and key < len(node)


def _reference_problems(raw: Mapping[str, Any], spdx_ids: Collection[str]) -> list[str]:
    problems: list[str] = []
    licence_ids = set(spdx_ids)
    seen: set[str] = set()
    licences = raw.get("licences")
    for index, licence in enumerate(licences if isinstance(licences, list) else []):
        licence_id = licence.get("id") if isinstance(licence, Mapping) else None
        if not isinstance(licence_id, str):
            continue
        where = _where(raw, ["licences", index, "id"])
        if licence_id.casefold() in seen:
            problems.append(f"{where}: {licence_id!r} is defined twice")
        if not licence_id.startswith("LicenseRef-") and licence_id not in spdx_ids:
            problems.append(
                f"{where}: {licence_id!r} is not an SPDX licence id (nor a LicenseRef-)"
            )
        seen.add(licence_id.casefold())
        licence_ids.add(licence_id)
    targets = [
        *(
            (["hub_licences", hub_id, "licence"], mapping.get("licence"))
            for hub_id, mapping in _items(raw.get("hub_licences"))
            if isinstance(mapping, Mapping)
        ),
        *(
            (["other_licence_names", name], target)
            for name, target in _items(raw.get("other_licence_names"))
        ),
    ]
    for path, target in targets:
        if isinstance(target, str) and target not in licence_ids:
            problems.append(f"{_where(raw, path)}: {target!r} is not a licence in the catalogue")
    return problems


def _items(value: object) -> Iterable[tuple[Any, Any]]:
    return value.items() if isinstance(value, Mapping) else ()
