"""A broker outage delays work and loses none: what a committed change sends (webhook
deliveries here; evaluations in tests/evaluators/test_outbox.py) waits in the outbox, the API
answers success, and once the broker is back the relay sends each exactly once."""

import time

import pytest
from django.core.management import call_command

from registry import services
from registry.models import (
    DeliveryStatus,
    EventDelivery,
    OutboxMessage,
    StagePolicy,
    WebhookEndpoint,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def staged(make_version, compliance_user, seeded):
    StagePolicy.objects.update_or_create(
        stage="staging",
        risk_tier="limited",
        defaults={"required_checks": ["metadata"], "approvals_required": 0},
    )
    version = make_version(
        risk_tier="limited", intended_use="Routing tickets", known_limitations="English only"
    )
    return services.version_update(
        actor=compliance_user, version=version, changes={"licence_concluded": "Apache-2.0"}
    )


def test_changes_committed_while_the_broker_is_down_answer_success_and_are_sent_later(
    api_for, engineer, compliance_user, staged, receiver, broker_down
):
    WebhookEndpoint.objects.create(name="ops", url=receiver.url, secret="s")

    promoted = api_for(engineer).post(
        f"/api/v1/versions/{staged.pk}/promote/", {"stage": "staging"}, format="json"
    )
    held = api_for(compliance_user).post(
        "/api/v1/holds/", {"version": staged.pk, "reason": "licence review"}, format="json"
    )

    assert promoted.status_code == 200, promoted.content
    assert held.status_code == 201, held.content
    staged.refresh_from_db()
    assert staged.stage == "staging"
    deliveries = EventDelivery.objects.order_by("id")
    assert [d.event for d in deliveries] == ["version.promoted", "version.held"]
    assert {d.status for d in deliveries} == {DeliveryStatus.PENDING}
    pending = OutboxMessage.objects.filter(sent_at__isnull=True)
    # Each change's webhook delivery and compliance recheck wait in the outbox.
    assert sorted(pending.values_list("task", flat=True)) == [
        "registry.tasks.deliver_event",
        "registry.tasks.deliver_event",
        "registry.tasks.recheck_compliance",
        "registry.tasks.recheck_compliance",
    ]
    assert all(message.attempts == 1 and message.last_error for message in pending)
    assert receiver.received == []

    broker_down()  # the broker is back
    time.sleep(1.1)  # the first retry's backoff
    call_command("outbox_relay", "--once")
    call_command("outbox_relay", "--once")  # a second relay finds nothing left to send

    assert not OutboxMessage.objects.filter(sent_at__isnull=True).exists()
    assert sorted(r["delivery"] for r in receiver.received) == sorted(str(d.pk) for d in deliveries)
    assert {d.status for d in EventDelivery.objects.all()} == {DeliveryStatus.DELIVERED}
