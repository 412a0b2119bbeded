"""Writes of licence waivers: compliance waives one rule's violations on exact weights."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from licensing.models import Licence, LicencePolicy, LicenceRule, LicenceWaiver, Severity
from licensing.services.policy import active_policy_or_refuse
from licensing.services.shared import require_compliance
from registry.audit import audit_record
from registry.errors import InvalidInput, PermissionRefused
from registry.gates import duty_conflict
from registry.models import ModelVersion
from registry.retry import retry_transaction
from registry.selectors import is_compliance
from registry.types import Actor


@dataclass(frozen=True)
class WaiverRequest:
    approver: Actor
    licence_id: str
    policy: LicencePolicy
    expires_at: datetime


def licence_waiver_validate(
    *,
    version: ModelVersion,
    rule_name: str,
    reason: str,
    approver: Actor | str | None,
    expires_at: datetime | None,
    licence_id: str = "",
) -> WaiverRequest:
    """Check a waiver request without writing; raises an error naming the bad field."""
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInput.for_field(
            "reason", "A waiver needs a reason compliance can stand by; say why it is acceptable."
        )
    if expires_at is None:
        raise InvalidInput.for_field(
            "expires_at", "A waiver needs an expiry date; licence waivers do not last forever."
        )
    now = timezone.now()
    if expires_at <= now:
        raise InvalidInput.for_field(
            "expires_at", "The expiry date is in the past; give a date in the future."
        )
    if expires_at > now + timedelta(days=settings.PEDIGREE_WAIVER_MAX_DAYS):
        raise InvalidInput.for_field(
            "expires_at", f"Waivers last at most {settings.PEDIGREE_WAIVER_MAX_DAYS} days."
        )
    approver = _resolve_approver(approver)
    conflict = duty_conflict(approver, version)
    if conflict:
        raise PermissionRefused.for_field(
            "approver",
            f"{conflict}, so cannot approve a waiver for it (separation of duties); "
            "name a compliance officer outside the owning team.",
        )
    policy = active_policy_or_refuse()
    rule = LicenceRule.objects.filter(policy=policy, name=rule_name).first()
    if rule is None:
        names = ", ".join(policy.rules.values_list("name", flat=True))
        raise InvalidInput.for_field(
            "rule", f"The active licence policy has no rule '{rule_name}'; one of: {names}."
        )
    if rule.severity == Severity.HINT:
        raise InvalidInput.for_field("rule", f"'{rule_name}' only gives hints; nothing to waive.")
    licence_id = (licence_id or "").strip()
    if licence_id and licence_id != "NONE":
        licence = Licence.objects.filter(spdx_id__iexact=licence_id).first()
        if licence is None:
            raise InvalidInput.for_field(
                "licence", f"Unknown licence '{licence_id}'; name an SPDX id or LicenseRef."
            )
        licence_id = licence.spdx_id
    return WaiverRequest(
        approver=approver, licence_id=licence_id, policy=policy, expires_at=expires_at
    )


@retry_transaction
@transaction.atomic
def licence_waiver_grant(
    *,
    actor: Actor,
    version: ModelVersion,
    rule_name: str,
    reason: str,
    approver: Actor | str | None,
    expires_at: datetime | None,
    licence_id: str = "",
) -> LicenceWaiver:
    """Waive the violations of one rule (optionally for one licence) on these exact weights."""
    require_compliance(actor, "waive licence violations")
    conflict = duty_conflict(actor, version)
    if conflict:
        raise PermissionRefused(
            f"{conflict}, so cannot waive its licence violations (separation of duties)."
        )
    request = licence_waiver_validate(
        version=version,
        rule_name=rule_name,
        reason=reason,
        approver=approver,
        expires_at=expires_at,
        licence_id=licence_id,
    )
    waiver = LicenceWaiver(
        version=version,
        artefact_digest=version.artefact_digest,
        rule_name=rule_name,
        licence_id=request.licence_id,
        reason=reason.strip(),
        approver=request.approver,
        granted_by=actor,
        expires_at=request.expires_at,
    )
    waiver.save(force_insert=True)
    audit_record(
        actor=actor,
        action="licence_waiver.grant",
        obj=version,
        after={
            "waiver": waiver.pk,
            "rule": rule_name,
            "licence": request.licence_id or None,
            "reason": waiver.reason,
            "approver": request.approver.username,
            "digest": version.artefact_digest,
            "expires_at": expires_at,
            "policy_revision": request.policy.revision,
        },
    )
    return waiver


def _resolve_approver(approver: Actor | str | None) -> Actor:
    if isinstance(approver, str):
        user = get_user_model().objects.filter(username=approver, is_active=True).first()
        if user is None:
            raise InvalidInput.for_field("approver", f"No active user named '{approver}'.")
        approver = user
    if approver is None:
        raise InvalidInput.for_field("approver", "Name the compliance officer who approves it.")
    if not is_compliance(approver):
        raise InvalidInput.for_field(
            "approver", f"{approver.username} is not compliance staff; name a compliance officer."
        )
    return approver


@retry_transaction
@transaction.atomic
def licence_waiver_revoke(*, actor: Actor, waiver: LicenceWaiver) -> LicenceWaiver:
    require_compliance(actor, "revoke licence waivers")
    waiver = LicenceWaiver.objects.select_for_update().get(pk=waiver.pk)
    if waiver.revoked_at is None:
        waiver.revoked_at = timezone.now()
        waiver.revoked_by = actor
        waiver.save(update_fields=["revoked_at", "revoked_by"])
        audit_record(
            actor=actor,
            action="licence_waiver.revoke",
            obj=waiver.version,
            after={"waiver": waiver.pk, "rule": waiver.rule_name},
        )
    return waiver
