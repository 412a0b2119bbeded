"""Model cards: reading README.md and parsing the metadata fields Pedigree records."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import ModelCard
from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from registry.hub.errors import HubError, first_line

CARD_FILE = "README.md"
# Cards are a few KiB; a cap keeps a hostile README from filling the database.
MAX_CARD_SIZE = 1_000_000


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
            f"The model card of {repo_id} has invalid YAML metadata ({first_line(error)}); "
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
                    field=key,
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


def read_card(path: Path, *, repo_id: str) -> str:
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


def _card_field_error(repo_id: str, key: str, expected: str) -> HubError:
    return HubError(
        f"The model card of {repo_id} has `{key}` that is not {expected}; fix its metadata.",
        code="card_invalid",
        field=key,
    )
