"""Events: the outbox of signed webhook deliveries, and the webhook endpoints they go to."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from registry.audit import audit_record
from registry.egress import EgressRefused, destination_check
from registry.errors import InvalidInput, PermissionRefused
from registry.models import DeliveryStatus, EventDelivery, WebhookEndpoint
from registry.outbox import outbox_add, outbox_holds
from registry.selectors import is_compliance
from registry.services._common import apply_changes, save_new, snapshot
from registry.types import Actor

EVENTS_QUEUE = "events"
DELIVER_TASK = "registry.tasks.deliver_event"
# Attempts to send one delivery (the task's retries included), and times the sweep publishes
# again a delivery no worker took before failing it.
DELIVERY_MAX_ATTEMPTS = 5
SWEEP_BATCH = 100
WEBHOOK_ENDPOINT_UPDATABLE = {"name", "url", "secret", "events", "active"}


def event_publish(*, kind: str, payload: dict[str, Any]) -> list[EventDelivery]:
    """Queue a signed webhook delivery per interested endpoint, in the change's transaction;
    the outbox sends each after the commit."""
    deliveries = [
        EventDelivery.objects.create(
            endpoint=endpoint,
            event=kind,
            payload={"event": kind, "at": timezone.now().isoformat(), "data": payload},
        )
        for endpoint in WebhookEndpoint.objects.filter(active=True)
        if not endpoint.events or kind in endpoint.events
    ]
    for delivery in deliveries:
        _send(delivery.pk)
    return deliveries


def _send(delivery_id: int) -> None:
    outbox_add(task=DELIVER_TASK, args=[delivery_id], queue=EVENTS_QUEUE)


def delivery_stale_before() -> datetime:
    """A delivery `sending` since before this lost its worker."""
    return timezone.now() - timedelta(seconds=settings.PEDIGREE_DELIVERY_STALE_SECONDS)


@dataclass(frozen=True)
class DeliverySweepReport:
    resent: list[int] = field(default_factory=list)
    republished: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def deliveries_sweep() -> DeliverySweepReport:
    """Put back in the outbox every delivery `sending` for longer than its stale time (its
    worker died mid-POST), and every one `pending` long after its message left the outbox (the
    broker lost it); fail those no worker took after `DELIVERY_MAX_ATTEMPTS` publications. The
    task's claim lets only one attempt send, so a duplicate message is harmless."""
    report = DeliverySweepReport()
    stale = EventDelivery.objects.filter(
        status=DeliveryStatus.SENDING, claimed_at__lt=delivery_stale_before()
    )
    for delivery_id, claimed_at in stale.values_list("pk", "claimed_at")[:SWEEP_BATCH]:
        with transaction.atomic():
            if EventDelivery.objects.filter(
                pk=delivery_id, status=DeliveryStatus.SENDING, claimed_at=claimed_at
            ).update(
                status=DeliveryStatus.PENDING,
                last_error="the worker sending it was lost",
                queued_at=timezone.now(),
            ):
                _send(delivery_id)
                report.resent.append(delivery_id)
    waited = settings.PEDIGREE_DELIVERY_QUEUED_STALE_SECONDS
    lost = EventDelivery.objects.filter(
        status=DeliveryStatus.PENDING, queued_at__lt=timezone.now() - timedelta(seconds=waited)
    ).order_by("queued_at")
    for delivery_id, queued_at, times in lost.values_list("pk", "queued_at", "republished")[
        :SWEEP_BATCH
    ]:
        if outbox_holds(task=DELIVER_TASK, args=[delivery_id]):
            continue  # the broker was down: the outbox still holds the message
        with transaction.atomic():
            still_lost = EventDelivery.objects.filter(
                pk=delivery_id, status=DeliveryStatus.PENDING, queued_at=queued_at
            )
            if times >= DELIVERY_MAX_ATTEMPTS:
                if still_lost.update(
                    status=DeliveryStatus.FAILED,
                    last_error=f"No worker took this delivery from the '{EVENTS_QUEUE}' queue "
                    f"although it was published {times + 1} times, {waited} s apart. Check that "
                    f"a worker consumes the '{EVENTS_QUEUE}' queue (make worker).",
                ):
                    report.failed.append(delivery_id)
            elif still_lost.update(queued_at=timezone.now(), republished=F("republished") + 1):
                _send(delivery_id)
                report.republished.append(delivery_id)
    return report


def webhook_events_validate(events: object) -> list[str]:
    """The event kinds an endpoint subscribes to, as a list of names (empty: every event).

    Anything else would be matched by `in` as a substring or a key, so it is refused.
    """
    if not isinstance(events, list | tuple) or not all(
        isinstance(kind, str) and kind.strip() for kind in events
    ):
        raise InvalidInput.for_field(
            "events",
            'Give the event kinds as a JSON list of names, like ["version.promoted"]; '
            "an empty list [] sends every event.",
        )
    return list(events)


def _require_webhook_admin(actor: Actor) -> None:
    # Every team's governance events go to every endpoint, so no single team may manage them.
    if not (is_compliance(actor) or actor.is_staff):
        raise PermissionRefused(
            "Only compliance staff or administrators can manage webhook endpoints."
        )


def _check_destination(url: str) -> None:
    try:
        destination_check(url)
    except EgressRefused as error:
        raise InvalidInput.for_field("url", str(error), code="webhook_destination") from None


def _audited(endpoint: WebhookEndpoint) -> dict[str, Any]:
    """An endpoint as the audit keeps it: never its signing secret."""
    values = snapshot(endpoint)
    del values["secret"]
    return values


@transaction.atomic
def webhook_endpoint_create(
    *,
    actor: Actor,
    name: str,
    url: str,
    secret: str,
    events: list[str] | tuple[str, ...] = (),
    active: bool = True,
) -> WebhookEndpoint:
    _require_webhook_admin(actor)
    _check_destination(url)
    endpoint = WebhookEndpoint(
        name=name, url=url, secret=secret, events=webhook_events_validate(events), active=active
    )
    save_new(
        endpoint,
        unique_field="name",
        unique_message=f"A webhook endpoint named '{name}' already exists.",
    )
    audit_record(
        actor=actor, action="webhook_endpoint.create", obj=endpoint, after=_audited(endpoint)
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_update(
    *, actor: Actor, endpoint: WebhookEndpoint, changes: dict[str, Any]
) -> WebhookEndpoint:
    _require_webhook_admin(actor)
    if "events" in changes:
        changes = {**changes, "events": webhook_events_validate(changes["events"])}
    if "url" in changes:
        _check_destination(changes["url"])
    before = _audited(endpoint)
    apply_changes(endpoint, changes, WEBHOOK_ENDPOINT_UPDATABLE)
    endpoint.save()
    after = _audited(endpoint)
    if "secret" in changes:
        after["secret_replaced"] = True
    audit_record(
        actor=actor, action="webhook_endpoint.update", obj=endpoint, before=before, after=after
    )
    return endpoint


@transaction.atomic
def webhook_endpoint_delete(*, actor: Actor, endpoint: WebhookEndpoint) -> None:
    """Delete an endpoint with its delivery history; governance events stop going to it."""
    _require_webhook_admin(actor)
    audit_record(
        actor=actor,
        action="webhook_endpoint.delete",
        obj=endpoint,
        before=_audited(endpoint),
        after={"deliveries_deleted": endpoint.deliveries.count()},
    )
    endpoint.delete()
