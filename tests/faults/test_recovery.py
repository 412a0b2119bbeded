"""Deliveries whose worker died mid-POST are taken over: by a redelivered task once they are
stale, and by the sweep, which puts them back in the outbox."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from registry import services, tasks
from registry.models import DeliveryStatus, EventDelivery, OutboxMessage, WebhookEndpoint

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sending(receiver):
    """A delivery its worker claimed, then died while sending (no status change since)."""
    endpoint = WebhookEndpoint.objects.create(name="ops", url=receiver.url, secret="s")
    return EventDelivery.objects.create(
        endpoint=endpoint,
        event="version.held",
        payload={"event": "version.held"},
        status=DeliveryStatus.SENDING,
        attempts=1,
        claimed_at=timezone.now(),
    )


def age(delivery, seconds):
    EventDelivery.objects.filter(pk=delivery.pk).update(
        claimed_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_a_redelivered_task_takes_over_a_stale_delivery_only(sending, receiver, settings):
    settings.PEDIGREE_DELIVERY_STALE_SECONDS = 30
    age(sending, 5)  # its worker may still be sending
    # `.result`, not `.get()`: after earlier tests in this process Celery may believe it runs
    # inside a task, and `.get()` then refuses ("Never call result.get() within a task").
    assert tasks.deliver_event.apply(args=[sending.pk]).result == "skipped"
    assert receiver.received == []

    age(sending, 31)
    assert tasks.deliver_event.apply(args=[sending.pk]).result == "delivered"
    sending.refresh_from_db()
    assert (sending.status, sending.attempts) == (DeliveryStatus.DELIVERED, 2)
    assert [r["delivery"] for r in receiver.received] == [str(sending.pk)]


def test_the_sweep_sends_stale_deliveries_again_exactly_once(sending, receiver, settings):
    settings.PEDIGREE_DELIVERY_STALE_SECONDS = 30
    age(sending, 5)
    assert services.deliveries_sweep().resent == []

    age(sending, 31)
    assert services.deliveries_sweep().resent == [sending.pk]  # relayed right after its commit
    assert services.deliveries_sweep().resent == []
    call_command("outbox_relay", "--once")

    sending.refresh_from_db()
    assert sending.status == DeliveryStatus.DELIVERED
    assert [r["delivery"] for r in receiver.received] == [str(sending.pk)]
    assert OutboxMessage.objects.get().sent_at is not None


@pytest.fixture
def pending(receiver):
    """A delivery whose message left the outbox and was then lost by the broker."""
    endpoint = WebhookEndpoint.objects.create(name="lost", url=receiver.url, secret="s")
    return EventDelivery.objects.create(
        endpoint=endpoint, event="version.held", payload={"event": "version.held"}
    )


def wait(delivery, seconds):
    EventDelivery.objects.filter(pk=delivery.pk).update(
        queued_at=timezone.now() - timedelta(seconds=seconds)
    )


def test_the_sweep_publishes_again_a_pending_delivery_the_broker_lost(pending, receiver, settings):
    settings.PEDIGREE_DELIVERY_QUEUED_STALE_SECONDS = 300
    wait(pending, 100)  # it may be waiting its turn in the queue
    assert services.deliveries_sweep() == services.DeliverySweepReport()

    wait(pending, 301)
    assert services.deliveries_sweep().republished == [pending.pk]  # relayed after its commit
    assert services.deliveries_sweep() == services.DeliverySweepReport()
    pending.refresh_from_db()
    assert (pending.status, pending.republished) == (DeliveryStatus.DELIVERED, 1)
    # The lost message turns up after all: the claim refuses it.
    assert tasks.deliver_event.apply(args=[pending.pk]).result == "skipped"
    assert [r["delivery"] for r in receiver.received] == [str(pending.pk)]


def test_the_sweep_leaves_a_pending_delivery_the_outbox_still_holds(pending, receiver, settings):
    settings.PEDIGREE_DELIVERY_QUEUED_STALE_SECONDS = 300
    # The broker is down: its message waits in the outbox, unsent.
    OutboxMessage.objects.create(
        task="registry.tasks.deliver_event",
        args=[pending.pk],
        queue="events",
        available_at=timezone.now() + timedelta(minutes=5),
    )
    wait(pending, 3600)
    assert services.deliveries_sweep() == services.DeliverySweepReport()
    pending.refresh_from_db()
    assert (pending.status, pending.republished) == (DeliveryStatus.PENDING, 0)
    assert receiver.received == []


def test_the_sweep_fails_a_pending_delivery_no_worker_takes(pending, receiver, settings):
    settings.PEDIGREE_DELIVERY_QUEUED_STALE_SECONDS = 300
    EventDelivery.objects.filter(pk=pending.pk).update(republished=services.DELIVERY_MAX_ATTEMPTS)
    wait(pending, 301)
    assert services.deliveries_sweep().failed == [pending.pk]
    pending.refresh_from_db()
    assert pending.status == DeliveryStatus.FAILED
    assert "No worker took this delivery from the 'events' queue" in pending.last_error
    assert not OutboxMessage.objects.exists()
    assert receiver.received == []
