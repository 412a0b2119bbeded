"""Events: the outbox of signed webhook deliveries, and the webhook endpoints they go to."""

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from registry.audit import audit_record
from registry.egress import EgressRefused, destination_check
from registry.errors import InvalidInput, PermissionRefused
from registry.models import DeliveryStatus, EventDelivery, WebhookEndpoint
from registry.outbox import outbox_add
from registry.selectors import is_compliance
from registry.services._common import apply_changes, save_new, snapshot
from registry.types import Actor

EVENTS_QUEUE = "events"
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
    outbox_add(task="registry.tasks.deliver_event", args=[delivery_id], queue=EVENTS_QUEUE)


def delivery_stale_before() -> datetime:
    """A delivery `sending` since before this lost its worker."""
    return timezone.now() - timedelta(seconds=settings.PEDIGREE_DELIVERY_STALE_SECONDS)


def deliveries_sweep() -> list[int]:
    """Put back in the outbox every delivery `sending` for longer than its stale time (its
    worker died mid-POST); returns their ids. The task's claim lets only one attempt send."""
    swept = []
    stale = EventDelivery.objects.filter(
        status=DeliveryStatus.SENDING, claimed_at__lt=delivery_stale_before()
    )
    for delivery_id, claimed_at in stale.values_list("pk", "claimed_at")[:SWEEP_BATCH]:
        with transaction.atomic():
            if EventDelivery.objects.filter(
                pk=delivery_id, status=DeliveryStatus.SENDING, claimed_at=claimed_at
            ).update(status=DeliveryStatus.PENDING, last_error="the worker sending it was lost"):
                _send(delivery_id)
                swept.append(delivery_id)
    return swept


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
