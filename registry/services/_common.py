"""Helpers the service modules share: validation, audit snapshots, team write permission and
licence-expression validation."""

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db import models as dj_models
from django.forms.models import model_to_dict

from pedigree_client.artefacts import ArtefactError
from registry.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionRefused,
    invalid_from_django,
)
from registry.models import ModelVersion, RegisteredModel, Team
from registry.plugins import LicenceValidator, plugins
from registry.selectors import is_team_member
from registry.types import Actor

# Licence expressions are validated and normalised to canonical SPDX text on every write by
# the `LicenceValidator`s other apps register (licensing; the registry does not import it).
LICENCE_FIELDS = ("licence_declared", "licence_concluded")


def normalise_licences(values: dict[str, Any]) -> dict[str, Any]:
    for name in LICENCE_FIELDS:
        if name in values:
            for validator in plugins.contributions(LicenceValidator):
                values[name] = validator.validate(name, values[name])
    return values


def snapshot(obj: dj_models.Model) -> dict[str, Any]:
    """The fields of a row as plain data, for audit before/after."""
    return model_to_dict(obj, exclude=["members", "artefact_manifest", "hub_card"])


def require_team_write(actor: Actor, team: Team) -> None:
    if not is_team_member(actor, team.pk):
        raise PermissionRefused(
            f"You are not a member of team '{team.slug}', so you cannot write its objects. "
            "Ask a team administrator to add you, or use one of your own teams."
        )


def validate_fields(obj: dj_models.Model, *, exclude: Iterable[str] = ()) -> None:
    """Every field and constraint of an unsaved row, except those involving `exclude`."""
    try:
        obj.full_clean(exclude=list(exclude))
    except DjangoValidationError as error:
        raise invalid_from_django(error) from None


def save_new(obj: dj_models.Model, *, unique_message: str, unique_field: str) -> None:
    validate_fields(obj)
    try:
        with transaction.atomic():
            obj.save(force_insert=True)
    except IntegrityError as error:
        raise Conflict.for_field(unique_field, unique_message) from error


def apply_changes(
    obj: dj_models.Model, changes: dict[str, Any], allowed: set[str]
) -> dict[str, Any]:
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise InvalidInput(
            f"These fields cannot be changed here: {', '.join(unknown)}. "
            f"Changeable fields: {', '.join(sorted(allowed))}.",
            fields={name: ["This field cannot be changed."] for name in unknown},
        )
    before = snapshot(obj)
    for name, value in normalise_licences(dict(changes)).items():
        setattr(obj, name, value)
    try:
        obj.full_clean()
    except DjangoValidationError as error:
        raise invalid_from_django(error) from None
    return before


def refuse_taken_label(model: RegisteredModel, version: str) -> None:
    if ModelVersion.objects.filter(model=model, version=version).exists():
        raise Conflict.for_field(
            "version", f"{model.name} already has a version '{version}'; pick a new label."
        )


def artefact_invalid(field: str, error: ArtefactError) -> InvalidInput | NotFound:
    """The service error for a refused artefact: a path outside the caller's areas is not found,
    as if nothing were there."""
    if error.code == "not_in_area":
        return NotFound.for_field(field, error.message)
    return InvalidInput.for_field(field, error.message, code=error.code)
