"""Holds: stopping a version and every descendant, and lifting the stop."""

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from lineage.models import HeldThrough, Hold, HoldCategory
from lineage.selectors import descendant_ids, fetch_ids, seed_sql, sql, walk_cte
from lineage.services.shared import clean, lineage_write_lock
from registry.audit import audit_record
from registry.errors import Conflict, InvalidInput, PermissionRefused
from registry.models import ModelVersion
from registry.retry import retry_transaction
from registry.selectors import is_compliance, is_team_member
from registry.services import compliance_recheck_after_commit, event_publish, snapshot
from registry.types import Actor


@retry_transaction
@transaction.atomic
def hold_place(
    *,
    actor: Actor,
    version: ModelVersion,
    reason: str,
    category: str = HoldCategory.OTHER,
    reference: str = "",
) -> Hold:
    """Hold `version` and every descendant (one INSERT … SELECT over the recursive walk).

    Compliance staff and the version's owning team may place holds: stopping a model is
    always safe, and the team is often first to learn of a problem. Only compliance lifts.
    """
    version = ModelVersion.objects.select_related("model__team").get(pk=version.pk)
    if not (is_compliance(actor) or is_team_member(actor, version.model.team_id)):
        raise PermissionRefused(
            f"Only compliance staff or members of team '{version.model.team.slug}' can place "
            f"a hold on {version}."
        )
    if not reason or not reason.strip():
        raise InvalidInput.for_field(
            "reason", "Say why the version is held (e.g. 'upstream licence withdrawn')."
        )
    if category not in HoldCategory.values:
        raise InvalidInput.for_field(
            "category",
            f"Unknown category '{category}'; use one of: {', '.join(HoldCategory.values)}.",
        )
    return _hold_write(
        actor=actor, version=version, reason=reason, category=category, reference=reference
    )


def _hold_write(
    *, actor: Actor, version: ModelVersion, reason: str, category: str, reference: str
) -> Hold:
    lineage_write_lock()
    hold = Hold(
        version=version,
        category=category,
        reason=reason.strip(),
        reference=reference,
        placed_by=actor,
    )
    clean(hold, exclude=["version", "placed_by"])
    hold.save(force_insert=True)
    with connection.cursor() as cursor:
        cursor.execute(
            sql(
                "INSERT INTO {held} (hold_id, version_id) WITH RECURSIVE {walk} "
                "SELECT %s, id FROM below",
                walk=walk_cte("below", "down", seed_sql(), None),
            ),
            [version.pk, hold.pk],
        )
        held = cursor.rowcount
    audit_record(
        actor=actor,
        action="hold.place",
        obj=hold,
        after=snapshot(hold) | {"held_versions": held},
    )
    event_publish(
        kind="version.held",
        payload={
            "version": str(version),
            "hold": hold.pk,
            "reason": hold.reason,
            "held_versions": held,
            "by": actor.username,
        },
    )
    compliance_recheck_after_commit(held_ids(hold.pk))
    return hold


@retry_transaction
@transaction.atomic
def hold_lift(*, actor: Actor, hold: Hold, reason: str) -> Hold:
    """Lift a hold and every hold it passed down (one DELETE). Compliance staff only: a lift
    clears a stop that may protect other teams' descendants, so it needs a reviewer."""
    if not is_compliance(actor):
        raise PermissionRefused("Only compliance staff can lift a hold.")
    if not reason or not reason.strip():
        raise InvalidInput.for_field("reason", "Say why the hold can be lifted.")
    lineage_write_lock()
    before = snapshot(Hold.objects.get(pk=hold.pk))
    now = timezone.now()
    lifted = Hold.objects.filter(pk=hold.pk, lifted_at__isnull=True).update(
        lifted_at=now, lifted_by=actor, lift_reason=reason.strip()
    )
    if not lifted:
        raise Conflict(f"Hold #{hold.pk} was already lifted.")
    released, _ = HeldThrough.objects.filter(hold_id=hold.pk).delete()
    hold.refresh_from_db()
    audit_record(
        actor=actor,
        action="hold.lift",
        obj=hold,
        before=before,
        after=snapshot(hold) | {"released_versions": released},
    )
    event_publish(
        kind="version.hold_lifted",
        payload={
            "version": str(hold.version),
            "hold": hold.pk,
            "reason": hold.lift_reason,
            "released_versions": released,
            "by": actor.username,
        },
    )
    compliance_recheck_after_commit(fetch_ids(descendant_ids(hold.version_id, include_self=True)))
    return hold


def held_ids(hold_id: int) -> list[int]:
    return list(HeldThrough.objects.filter(hold_id=hold_id).values_list("version_id", flat=True))


SYSTEM_USERNAME = "pedigree-system"


@transaction.atomic
def compliance_hold_place(version: ModelVersion, reason: str) -> int:
    """The automatic hold on a staged version that fell out of compliance, where its stage
    policy asks for one; placed by the inactive system account, lifted by compliance staff."""
    system, _ = get_user_model().objects.get_or_create(
        username=SYSTEM_USERNAME, defaults={"is_active": False}
    )
    hold = _hold_write(
        actor=system,
        version=version,
        reason=reason[:2000],
        category=HoldCategory.OTHER,
        reference="automatic: out of compliance",
    )
    return hold.pk
