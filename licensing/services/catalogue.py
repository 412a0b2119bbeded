"""Writes of the licence catalogue: the sync from the shipped data, compliance's corrections."""

from typing import Any

from django.db import transaction
from django.utils import timezone

from licensing.catalogue import CATEGORIES
from licensing.models import (
    HubLicenceMapping,
    Licence,
    LicencePolicy,
    LicencePolicyRevision,
    LicenceRule,
    LicenceTerm,
)
from licensing.seeding import SyncReport, seed_catalogue, seed_default_policy
from licensing.services.shared import require_compliance
from registry.audit import audit_record
from registry.errors import InvalidInput
from registry.types import Actor

LICENCE_EDITABLE = {"category", "review_required", "notes"}


@transaction.atomic
def licences_sync(*, actor: Actor | None = None) -> SyncReport:
    """Re-seed licences, terms and Hub ids from the catalogue; keep compliance's corrections.
    Creates the default policy when no licence policy exists. `actor` None: the system."""
    if actor is not None:
        require_compliance(actor, "re-sync the licence catalogue")
    report = seed_catalogue(Licence, LicenceTerm, HubLicenceMapping)
    created_policy = seed_default_policy(LicencePolicy, LicenceRule, LicencePolicyRevision)
    audit_record(
        actor=actor,
        action="licence_catalogue.sync",
        object_type="licensing.licence",
        object_id="catalogue",
        after=report.to_dict() | {"default_policy_created": created_policy},
    )
    return report


@transaction.atomic
def licence_update(*, actor: Actor, licence: Licence, changes: dict[str, Any]) -> Licence:
    """Compliance corrects a licence's category, review flag or notes; the sync keeps them."""
    require_compliance(actor, "change licence categories or review flags")
    unknown = sorted(set(changes) - LICENCE_EDITABLE)
    if unknown:
        raise InvalidInput(
            f"These fields cannot be changed: {', '.join(unknown)}; the catalogue owns them. "
            f"Changeable: {', '.join(sorted(LICENCE_EDITABLE))}.",
            fields={name: ["This field cannot be changed."] for name in unknown},
        )
    if "category" in changes and changes["category"] not in CATEGORIES:
        raise InvalidInput.for_field(
            "category",
            f"Unknown category '{changes['category']}'; use one of: {', '.join(CATEGORIES)}.",
        )
    if "review_required" in changes and not isinstance(changes["review_required"], bool):
        raise InvalidInput.for_field("review_required", "Give true or false.")
    licence = Licence.objects.select_for_update().get(pk=licence.pk)
    before = _licence_snapshot(licence)
    for name, value in changes.items():
        setattr(licence, name, value)
    if {"category", "review_required"} & set(changes):
        licence.compliance_override = (licence.category, licence.review_required) != (
            licence.catalogue_category,
            licence.catalogue_review_required,
        )
        licence.reviewed_by = actor
        licence.reviewed_at = timezone.now()
    licence.save()
    audit_record(
        actor=actor,
        action="licence.update",
        obj=licence,
        before=before,
        after=_licence_snapshot(licence),
    )
    return licence


def _licence_snapshot(licence: Licence) -> dict[str, Any]:
    return {
        "spdx_id": licence.spdx_id,
        "category": licence.category,
        "review_required": licence.review_required,
        "notes": licence.notes,
        "compliance_override": licence.compliance_override,
    }
