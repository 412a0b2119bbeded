"""The licence catalogue: curated ML licence data merged with the full SPDX licence list.

`ml_licences.yaml` holds what a person curated: categories and clause-cited terms for the
licences models and datasets use, the Hugging Face Hub licence ids and the names `license: other`
cards use; `ml_licences.schema.json` describes it and `validation.py` checks it. Every other
SPDX licence comes from the SPDX list bundled with `license-expression` (ScanCode's licence
index) and is categorised by `_rule_category`:

1. its id: `-NC-`/"noncommercial" -> non_commercial, `-ND-` -> use_restricted,
   `-SA-` -> copyleft, GPL/AGPL/GFDL/EUPL -> copyleft, LGPL -> weak_copyleft;
2. otherwise ScanCode's own category for it (Permissive, Copyleft Limited, ...), mapped by
   `_SCANCODE_CATEGORIES`; the restrictive and proprietary ones also need review;
3. otherwise unknown, with review required.

Such licences carry no terms: only curated entries describe obligations.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from license_expression import get_license_index

from licensing.catalogue.validation import CatalogueError, catalogue_problems
from lineage.models import Relation

DATA_FILE = Path(__file__).with_name("ml_licences.yaml")

UNKNOWN_LICENCE_ID = "LicenseRef-Unknown"
OTHER_LICENCE_ID = "LicenseRef-Other"
HUB_LICENCES_DOCS = "https://huggingface.co/docs/hub/repositories-licenses"


class LicenceCategory(StrEnum):
    PERMISSIVE = "permissive"
    WEAK_COPYLEFT = "weak_copyleft"
    COPYLEFT = "copyleft"
    NON_COMMERCIAL = "non_commercial"
    USE_RESTRICTED = "use_restricted"
    PROPRIETARY = "proprietary"
    UNKNOWN = "unknown"


class TermType(StrEnum):
    ATTRIBUTION = "attribution"
    LICENCE_COPY = "licence_copy"
    NOTICE_FILE = "notice_file"
    NAMING_PREFIX = "naming_prefix"
    DISPLAY_BADGE = "display_badge"
    USE_RESTRICTIONS_PASSDOWN = "use_restrictions_passdown"
    AUP_REFERENCE = "aup_reference"
    NON_COMMERCIAL = "non_commercial"
    SHARE_ALIKE = "share_alike"
    NO_DERIVATIVES = "no_derivatives"
    USER_THRESHOLD = "user_threshold"
    NO_OUTPUT_TRAINING = "no_output_training"
    STATE_CHANGES = "state_changes"


# A term carries through lineage relations (how a child came from a parent) and through
# `trained_on`, from a dataset to the model trained on it.
TRAINED_ON = "trained_on"

CATEGORIES: tuple[str, ...] = tuple(LicenceCategory)
TERM_TYPES: tuple[str, ...] = tuple(TermType)
# What a term may name in carries_through; an unknown relation carries every term instead.
RELATIONS: tuple[str, ...] = (
    *(relation for relation in Relation.values if relation != Relation.UNKNOWN),
    TRAINED_ON,
)

# SPDX 2.3 idstring characters, plus "+" (the or-later operator some deprecated ids carry).
_SPDX_ALIAS = re.compile(r"[A-Za-z0-9.+\-]+")

_NAME_RULES: tuple[tuple[re.Pattern[str], LicenceCategory], ...] = (
    (re.compile(r"(^|-)NC(-|$)|noncommercial", re.IGNORECASE), LicenceCategory.NON_COMMERCIAL),
    (re.compile(r"(^|-)ND(-|$)"), LicenceCategory.USE_RESTRICTED),
    (re.compile(r"(^|-)SA(-|$)"), LicenceCategory.COPYLEFT),
    (re.compile(r"^(AGPL|GPL|GFDL|EUPL)-"), LicenceCategory.COPYLEFT),
    (re.compile(r"^LGPL"), LicenceCategory.WEAK_COPYLEFT),
)

# ScanCode licence categories -> (category, review_required).
_SCANCODE_CATEGORIES: Mapping[str, tuple[LicenceCategory, bool]] = {
    "Permissive": (LicenceCategory.PERMISSIVE, False),
    "Public Domain": (LicenceCategory.PERMISSIVE, False),
    "Copyleft": (LicenceCategory.COPYLEFT, False),
    "Copyleft Limited": (LicenceCategory.WEAK_COPYLEFT, False),
    "Free Restricted": (LicenceCategory.USE_RESTRICTED, True),
    "Source-available": (LicenceCategory.PROPRIETARY, True),
    "Proprietary Free": (LicenceCategory.PROPRIETARY, True),
    "Commercial": (LicenceCategory.PROPRIETARY, True),
}


class LicenceError(ValueError):
    """A licence id, expression or Hub licence that cannot be used; the message says the fix."""

    def __init__(self, message: str, *, unknown_symbols: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.unknown_symbols = tuple(unknown_symbols)


@dataclass(frozen=True)
class LicenceTerm:
    type: str
    clause: str
    text: str
    carries_through: tuple[str, ...]
    value: str | int | None = None
    note: str = ""
    # Hinges on a fact only the releasing team knows: production needs it attested.
    attestation: bool = False

    def carries_through_relation(self, relation: str) -> bool:
        return relation in self.carries_through

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "clause": self.clause,
            "text": self.text,
            "carries_through": list(self.carries_through),
            "value": self.value,
            "note": self.note,
            "attestation": self.attestation,
        }


@dataclass(frozen=True)
class LicenceEntry:
    id: str
    name: str
    category: str
    url: str
    review_required: bool
    terms: tuple[LicenceTerm, ...] = ()
    curated: bool = True
    deprecated: bool = False
    aliases: tuple[str, ...] = ()
    notes: str = ""
    # The licensor's own Hub namespaces: its releases do not owe its naming terms to itself.
    licensor_namespaces: tuple[str, ...] = ()

    @property
    def is_licence_ref(self) -> bool:
        return self.id.startswith("LicenseRef-")

    def terms_of_type(self, term_type: str) -> tuple[LicenceTerm, ...]:
        return tuple(term for term in self.terms if term.type == term_type)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "category": self.category,
            "url": self.url,
            "review_required": self.review_required,
            "terms": [term.to_dict() for term in self.terms],
            "curated": self.curated,
            "deprecated": self.deprecated,
            "aliases": list(self.aliases),
            "notes": self.notes,
        }


@dataclass(frozen=True)
class LicenceException:
    """An SPDX licence exception, usable after WITH in an expression."""

    id: str
    aliases: tuple[str, ...] = ()
    deprecated: bool = False


@dataclass(frozen=True)
class HubLicence:
    """What a Hugging Face model card's `license:` means in catalogue terms."""

    hub_id: str | None
    expression: str
    review_required: bool
    reason: str
    license_name: str | None = None
    license_link: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "hub_id": self.hub_id,
            "expression": self.expression,
            "review_required": self.review_required,
            "reason": self.reason,
            "license_name": self.license_name,
            "license_link": self.license_link,
        }


@dataclass(frozen=True)
class _SpdxRecord:
    id: str
    aliases: tuple[str, ...]
    is_exception: bool
    deprecated: bool
    scancode_category: str


@dataclass(frozen=True)
class _HubMapping:
    licence: str
    review_required: bool
    reason: str


@dataclass(frozen=True)
class _Catalogue:
    entries: tuple[LicenceEntry, ...]
    exceptions: tuple[LicenceException, ...]
    by_key: Mapping[str, LicenceEntry]
    hub: Mapping[str, _HubMapping]
    other_names: Mapping[str, str]
    by_url: Mapping[str, str]


def load_catalogue() -> list[LicenceEntry]:
    """Every licence: the curated entries and every other SPDX licence, sorted by id."""
    return list(_catalogue().entries)


def load_exceptions() -> list[LicenceException]:
    """The SPDX licence exceptions (for `WITH`)."""
    return list(_catalogue().exceptions)


def get_licence(licence_id: str) -> LicenceEntry:
    """The catalogue entry for an id or a deprecated SPDX alias, matched case-insensitively."""
    entry = _catalogue().by_key.get(licence_id.strip().casefold())
    if entry is None:
        raise LicenceError(
            f"{licence_id!r} is not in the licence catalogue. Use an SPDX id such as Apache-2.0, "
            "or a LicenseRef- defined in the catalogue.",
            unknown_symbols=[licence_id],
        )
    return entry


def hub_licence_ids() -> list[str]:
    """The Hugging Face Hub licence ids the catalogue maps, in data-file order."""
    return list(_catalogue().hub)


def resolve_hub_licence(
    hub_id: str | None, *, license_name: str | None = None, license_link: str | None = None
) -> HubLicence:
    """Map a model card's `license` (with `license_name`/`license_link`) to an expression."""
    catalogue = _catalogue()
    name = _clean(license_name)
    link = _clean(license_link)
    if hub_id is None or not hub_id.strip():
        return HubLicence(
            hub_id=None,
            expression=UNKNOWN_LICENCE_ID,
            review_required=True,
            reason="the model card declares no licence",
            license_name=name,
            license_link=link,
        )
    key = hub_id.strip().lower()
    mapping = catalogue.hub.get(key)
    if mapping is None:
        raise LicenceError(
            f"{hub_id!r} is not a Hugging Face Hub licence id. Use one of the ids listed at "
            f"{HUB_LICENCES_DOCS}, or 'other' with license_name and license_link.",
            unknown_symbols=[hub_id],
        )
    if key == "other":
        return _resolve_other(catalogue, name, link)
    return _hub_result(catalogue, key, mapping, name, link, f"Hub licence {key!r}")


def validate_catalogue_data(raw: object, *, spdx_ids: Collection[str] | None = None) -> None:
    """Raise CatalogueError listing every problem in catalogue data (as parsed from the YAML)."""
    if spdx_ids is None:
        spdx_ids = {record.id for record in _spdx_records() if not record.is_exception}
    problems = catalogue_problems(raw, spdx_ids=spdx_ids)
    if problems:
        raise CatalogueError(problems, source=DATA_FILE.name)


@functools.cache
def _spdx_records() -> tuple[_SpdxRecord, ...]:
    records = []
    for item in get_license_index():
        key = item.get("spdx_license_key") or ""
        # ScanCode's own LicenseRef-scancode-* keys are not SPDX licences.
        if not key or key.startswith("LicenseRef-"):
            continue
        aliases = tuple(
            alias
            for alias in item.get("other_spdx_license_keys", [])
            if _SPDX_ALIAS.fullmatch(alias) and not alias.startswith("LicenseRef-")
        )
        records.append(
            _SpdxRecord(
                id=key,
                aliases=aliases,
                is_exception=bool(item.get("is_exception")),
                deprecated=bool(item.get("is_deprecated")),
                scancode_category=item.get("category") or "",
            )
        )
    return tuple(records)


def _rule_category(record: _SpdxRecord) -> tuple[LicenceCategory, bool, str]:
    """(category, review_required, what the category was inferred from)."""
    for pattern, category in _NAME_RULES:
        if pattern.search(record.id):
            return category, False, "its SPDX id"
    if record.scancode_category in _SCANCODE_CATEGORIES:
        category, review_required = _SCANCODE_CATEGORIES[record.scancode_category]
        return category, review_required, f"ScanCode's {record.scancode_category!r} classification"
    return LicenceCategory.UNKNOWN, True, "no rule (unclassified)"


def _read_data() -> Mapping[str, Any]:
    with DATA_FILE.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@functools.cache
def _catalogue() -> _Catalogue:
    raw = _read_data()
    records = _spdx_records()
    validate_catalogue_data(raw, spdx_ids={r.id for r in records if not r.is_exception})
    spdx_by_id = {record.id: record for record in records}

    entries: dict[str, LicenceEntry] = {}
    for licence in raw["licences"]:
        record = spdx_by_id.get(licence["id"])
        entries[licence["id"]] = LicenceEntry(
            id=licence["id"],
            name=licence["name"].strip(),
            category=licence["category"],
            url=licence["url"],
            review_required=licence["review_required"],
            terms=tuple(_term(term) for term in licence["terms"]),
            curated=True,
            deprecated=record.deprecated if record else False,
            aliases=record.aliases if record else (),
            notes=(licence.get("notes") or "").strip(),
            licensor_namespaces=tuple(
                namespace.casefold() for namespace in licence.get("licensor_namespaces", ())
            ),
        )
    for record in records:
        if record.is_exception or record.id in entries:
            continue
        category, review_required, basis = _rule_category(record)
        entries[record.id] = LicenceEntry(
            # The bundled SPDX index carries ids but no names.
            id=record.id,
            name=record.id,
            category=category.value,
            url=f"https://spdx.org/licenses/{record.id}.html",
            review_required=review_required,
            curated=False,
            deprecated=record.deprecated,
            aliases=record.aliases,
            notes=f"Not curated: category {category.value} from {basis}; terms not recorded.",
        )
    ordered = tuple(sorted(entries.values(), key=lambda entry: entry.id.casefold()))

    by_key: dict[str, LicenceEntry] = {}
    for entry in ordered:
        for key in (entry.id, *entry.aliases):
            by_key.setdefault(key.casefold(), entry)

    hub = {
        hub_id: _HubMapping(
            licence=mapping["licence"],
            review_required=mapping.get("review_required", False),
            reason=" ".join((mapping.get("reason") or "").split()),
        )
        for hub_id, mapping in raw["hub_licences"].items()
    }
    # A URL identifies a licence only when a single curated entry uses it.
    url_owners: dict[str, set[str]] = {}
    for licence in raw["licences"]:
        url_owners.setdefault(_normalise_url(licence["url"]), set()).add(licence["id"])
    by_url = {url: next(iter(ids)) for url, ids in url_owners.items() if len(ids) == 1}

    return _Catalogue(
        entries=ordered,
        exceptions=tuple(
            LicenceException(id=r.id, aliases=r.aliases, deprecated=r.deprecated)
            for r in records
            if r.is_exception
        ),
        by_key=by_key,
        hub=hub,
        other_names=dict(raw.get("other_licence_names") or {}),
        by_url=by_url,
    )


def _term(term: Mapping[str, Any]) -> LicenceTerm:
    value = term.get("value")
    return LicenceTerm(
        type=term["type"],
        clause=term["clause"].strip(),
        text=" ".join(term["text"].split()),
        carries_through=tuple(term["carries_through"]),
        value=value.strip() if isinstance(value, str) else value,
        note=" ".join((term.get("note") or "").split()),
        attestation=bool(term.get("attestation", False)),
    )


def _hub_result(
    catalogue: _Catalogue,
    hub_id: str,
    mapping: _HubMapping,
    name: str | None,
    link: str | None,
    described_as: str,
) -> HubLicence:
    entry = catalogue.by_key[mapping.licence.casefold()]
    reasons = [mapping.reason] if mapping.review_required else []
    if entry.review_required:
        reasons.append(
            f"{entry.id} is marked for review in the licence catalogue"
            + (f": {entry.notes}" if entry.notes else ".")
        )
    return HubLicence(
        hub_id=hub_id,
        expression=entry.id,
        review_required=mapping.review_required or entry.review_required,
        reason=" ".join(reasons) or f"{described_as} is {entry.id}.",
        license_name=name,
        license_link=link,
    )


def _resolve_other(catalogue: _Catalogue, name: str | None, link: str | None) -> HubLicence:
    if name is None and link is None:
        return HubLicence(
            hub_id="other",
            expression=OTHER_LICENCE_ID,
            review_required=True,
            reason=(
                "The model card declares 'other' but gives no license_name or license_link; "
                "find the licence text and record it."
            ),
        )
    recognised = _recognise_other(catalogue, name, link)
    if recognised is not None:
        mapping, described_as = recognised
        return _hub_result(catalogue, "other", mapping, name, link, described_as)
    declared = " and ".join(
        f"{label} {value!r}"
        for label, value in (("license_name", name), ("license_link", link))
        if value
    )
    return HubLicence(
        hub_id="other",
        expression=OTHER_LICENCE_ID,
        review_required=True,
        reason=(
            f"The model card declares 'other' with {declared}, which the licence catalogue does "
            "not recognise; review the licence text and add it to the catalogue as a LicenseRef."
        ),
        license_name=name,
        license_link=link,
    )


def _recognise_other(
    catalogue: _Catalogue, name: str | None, link: str | None
) -> tuple[_HubMapping, str] | None:
    if name is not None:
        described_as = f"license: other with license_name {name!r}"
        key = _normalise_name(name)
        if key in catalogue.other_names:
            return _HubMapping(catalogue.other_names[key], False, ""), described_as
        if key in catalogue.hub and key not in ("other", "unknown"):
            return catalogue.hub[key], described_as
        entry = catalogue.by_key.get(name.casefold())
        if entry is not None and entry.id not in (OTHER_LICENCE_ID, UNKNOWN_LICENCE_ID):
            return _HubMapping(entry.id, False, ""), described_as
    if link is not None:
        licence_id = catalogue.by_url.get(_normalise_url(link))
        if licence_id is not None:
            return _HubMapping(licence_id, False, ""), f"license: other with license_link {link!r}"
    return None


def _clean(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    return value.strip()


def _normalise_name(name: str) -> str:
    return re.sub(r"[\s_]+", "-", name.strip().lower())


def _normalise_url(url: str) -> str:
    url = re.split(r"[?#]", url.strip().lower(), maxsplit=1)[0]
    url = re.sub(r"^https?://(www\.)?", "", url)
    return url.rstrip("/")
