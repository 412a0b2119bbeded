"""Thin Celery tasks of the catalogue: take an id, call one service-level step."""

import hashlib
import hmac
import json

from celery import shared_task
from django.conf import settings
from django.db.models import F
from django.utils import timezone

from registry import services
from registry.egress import DeliveryFailed, EgressRefused, webhook_post
from registry.models import DeliveryStatus, EventDelivery

MAX_ATTEMPTS = 5


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=MAX_ATTEMPTS - 1,
    soft_time_limit=60,
    time_limit=90,
)
def deliver_event(self, delivery_id: int) -> str:
    """POST one event, signed with HMAC-SHA256 of the body in `X-Pedigree-Signature`."""
    # Claim with a conditional UPDATE so a redelivered message cannot send twice at once.
    claimed = EventDelivery.objects.filter(
        pk=delivery_id, status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED]
    ).update(status=DeliveryStatus.SENDING, attempts=F("attempts") + 1)
    if not claimed:
        return "skipped"
    delivery = EventDelivery.objects.select_related("endpoint").get(pk=delivery_id)
    body = json.dumps(delivery.payload, sort_keys=True).encode()
    try:
        # Checked again at delivery: DNS may answer differently than when it was created.
        webhook_post(
            delivery.endpoint.url,
            body=body,
            headers={
                "Content-Type": "application/json",
                "X-Pedigree-Event": delivery.event,
                "X-Pedigree-Delivery": str(delivery.pk),
                "X-Pedigree-Signature": signature(delivery.endpoint.secret, body),
            },
            timeout=settings.PEDIGREE_WEBHOOK_TIMEOUT,
        )
    except (EgressRefused, DeliveryFailed) as error:
        EventDelivery.objects.filter(pk=delivery_id).update(
            status=DeliveryStatus.FAILED, last_error=str(error)[:2000]
        )
        # In-process (no broker) there is no worker to retry later: the failure stays recorded.
        if not self.request.is_eager and self.request.retries < self.max_retries:
            raise self.retry(countdown=min(600, 2**self.request.retries * 5)) from None
        return "failed"
    EventDelivery.objects.filter(pk=delivery_id).update(
        status=DeliveryStatus.DELIVERED, delivered_at=timezone.now(), last_error=""
    )
    return "delivered"


@shared_task(acks_late=True, soft_time_limit=600, time_limit=660)
def sweep_uploads() -> list[str]:
    """Periodic (celery beat): delete the uploads no version took in time."""
    return [str(upload_id) for upload_id in services.uploads_sweep()]
