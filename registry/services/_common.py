"""Helpers the service modules share: validation, audit snapshots, team write permission and
licence-expression validation."""

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.db import models as dj_models
from django.forms.models import model_to_dict

from pedigree_client.artefacts import ArtefactError
from registry.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionRefused,
    ServiceError,
    full_clean,
    invalid_from_django,
)
from registry.evidence import evidence_protection, weakening_changes
from registry.models import DatasetVersion, ModelVersion, RegisteredModel, Team
from registry.plugins import LicenceValidator, plugins
from registry.selectors import is_compliance, is_team_member
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
    """Every field of an unsaved row, except those in `exclude`, checked in Python only.

    What only the database can answer (uniqueness, constraints, that a foreign key exists) is
    left to the INSERT, whose `IntegrityError` `save_new` turns into the same answer: asking
    first would cost a query per constraint and still race a concurrent writer.
    """
    relations = [field.name for field in obj._meta.concrete_fields if field.is_relation]
    try:
        obj.full_clean(
            exclude=[*exclude, *relations], validate_unique=False, validate_constraints=False
        )
    except DjangoValidationError as error:
        raise invalid_from_django(error) from None


def _rule_broken(
    obj: dj_models.Model, error: IntegrityError, *, unique_field: str, unique_message: str
) -> ServiceError | None:
    """The answer to an INSERT of `obj` that broke one of its table's rules, when `error` names
    one: 409 for taking a unique value, 400 with the rule's message for a constraint."""
    meta = obj._meta
    name = getattr(getattr(error.__cause__, "diag", None), "constraint_name", None)  # PostgreSQL
    text = str(error)  # SQLite: "UNIQUE constraint failed: t.a, t.b" / "CHECK constraint failed: c"
    for constraint in meta.constraints:
        fields: tuple[str, ...] = tuple(getattr(constraint, "fields", ()))
        if fields:
            columns = ", ".join(
                f"{meta.db_table}.{getattr(meta.get_field(f), 'column', f)}" for f in fields
            )
            broken = text.endswith(f"UNIQUE constraint failed: {columns}")
        else:
            broken = text.endswith(f"CHECK constraint failed: {constraint.name}")
            condition = getattr(constraint, "condition", None)
            fields = tuple(sorted(condition.referenced_base_fields)) if condition else ()
        if name == constraint.name or broken:
            if unique_field in fields:
                return Conflict.for_field(unique_field, unique_message)
            message = str(constraint.get_violation_error_message())
            return InvalidInput.for_field(fields[0] if fields else unique_field, message)
    for field in meta.concrete_fields:
        if field.unique and not field.primary_key:
            column = field.column
            by_name = (
                name is not None and f"_{column}_" in name and name.endswith(("_key", "_uniq"))
            )
            if by_name or text.endswith(f"UNIQUE constraint failed: {meta.db_table}.{column}"):
                message = (
                    unique_message
                    if field.name == unique_field
                    else f"Another {meta.verbose_name} has this {field.verbose_name}; pick another."
                )
                return Conflict.for_field(field.name, message)
    return None


def save_new(obj: dj_models.Model, *, unique_message: str, unique_field: str) -> None:
    """Insert a checked row; a rule of its table that it breaks answers 409 (a unique value
    taken, `unique_message` for `unique_field`) or 400 (a constraint, with its message).

    No savepoint of its own: callers are services whose transaction the answer leaves, which
    rolls back the failed statement with the rest.
    """
    validate_fields(obj)
    try:
        obj.save(force_insert=True)
    except IntegrityError as error:
        answer = _rule_broken(obj, error, unique_field=unique_field, unique_message=unique_message)
        if answer is None:
            raise
        raise answer from error


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
        full_clean(obj)
    except DjangoValidationError as error:
        raise invalid_from_django(error) from None
    return before


def refuse_taken_label(model: RegisteredModel, version: str) -> None:
    if ModelVersion.objects.filter(model=model, version=version).exists():
        raise Conflict.for_field(
            "version", f"{model.name} already has a version '{version}'; pick a new label."
        )


# A version enters a stage only through the gate (`version_promote`); no other writer sets these.
PROMOTION_ONLY_FIELDS = ("stage", "production_exclusive")


def refuse_promotion_fields(values: dict[str, Any]) -> None:
    given = [name for name in PROMOTION_ONLY_FIELDS if name in values]
    if given:
        message = (
            "A version is registered in development and changes stage only through promotion "
            "(POST /api/v1/versions/<ref>/promote/, `pedigree promote`), which runs the gate."
        )
        raise InvalidInput(message, fields={name: [message] for name in given})


def refuse_weakening(
    actor: Actor, obj: ModelVersion | DatasetVersion, changes: dict[str, Any]
) -> None:
    """Once evidence is protected, a change that could weaken a gate check (`changes` with
    licences normalised) needs compliance staff: anyone else gets a 403 saying why."""
    if is_compliance(actor):
        return
    weakening = weakening_changes(obj, changes)
    protected = evidence_protection(obj) if weakening else None
    if protected:
        message = (
            f"{obj} is gate evidence and {protected}: {'; '.join(weakening.values())} could "
            "weaken a gate check, so only compliance staff can make this change. Ask a "
            "compliance officer to review and make it; the approvals it touches must be renewed."
        )
        raise PermissionRefused(
            message, fields={field: [message] for field in weakening}, code="evidence_protected"
        )


def artefact_invalid(field: str, error: ArtefactError) -> InvalidInput | NotFound:
    """The service error for a refused artefact: a path outside the caller's areas is not found,
    as if nothing were there."""
    if error.code == "not_in_area":
        return NotFound.for_field(field, error.message)
    return InvalidInput.for_field(field, error.message, code=error.code)
