"""Celery tasks in the embedded default (no broker: tasks run in-process): an expected failure
is recorded by the task, anything else surfaces instead of being swallowed."""

import pytest

from registry import tasks
from registry.egress import DeliveryFailed
from registry.models import DeliveryStatus, EventDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def delivery(db):
    endpoint = WebhookEndpoint.objects.create(
        name="sink", url="http://127.0.0.1:9/hook", secret="s", events=[]
    )
    return EventDelivery.objects.create(endpoint=endpoint, event="version.held", payload={})


def test_an_unexpected_task_error_surfaces_in_eager_mode(monkeypatch, delivery):
    def broken(*args, **kwargs):
        raise ValueError("a bug, not a network failure")

    monkeypatch.setattr(tasks, "webhook_post", broken)

    with pytest.raises(ValueError, match="a bug, not a network failure"):
        tasks.deliver_event.delay(delivery.pk)


def test_an_unreachable_endpoint_is_recorded_as_a_failed_delivery(monkeypatch, delivery):
    def unreachable(*args, **kwargs):
        raise DeliveryFailed("NewConnectionError: the receiver could not be reached.")

    monkeypatch.setattr(tasks, "webhook_post", unreachable)

    assert tasks.deliver_event.delay(delivery.pk).get() == "failed"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.FAILED
    assert delivery.attempts == 1
    assert "could not be reached" in delivery.last_error
