"""Thin Celery tasks of the catalogue: take an id, call one service-level step."""

import hashlib
import hmac
import json
import logging

from celery import shared_task
from django.conf import settings
from django.db.models import F, Q
from django.utils import timezone

from registry import services
from registry.audit import audit_seal
from registry.checkpoints import CheckpointKeyMissing, audit_checkpoint_write
from registry.egress import DeliveryFailed, EgressRefused, webhook_post
from registry.models import DeliveryStatus, EventDelivery
from registry.outbox import outbox_relay

logger = logging.getLogger(__name__)


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@shared_task(
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=services.DELIVERY_MAX_ATTEMPTS - 1,
    soft_time_limit=settings.PEDIGREE_WEBHOOK_TIMEOUT + 30,
    time_limit=settings.PEDIGREE_WEBHOOK_TIMEOUT + 60,
)
def deliver_event(self, delivery_id: int) -> str:
    """POST one event, signed with HMAC-SHA256 of the body in `X-Pedigree-Signature`."""
    # Claim with a conditional UPDATE so a redelivered message cannot send twice at once; a
    # delivery `sending` for longer than its stale time lost its worker and is taken over.
    claimed = EventDelivery.objects.filter(
        Q(status__in=[DeliveryStatus.PENDING, DeliveryStatus.FAILED])
        | Q(status=DeliveryStatus.SENDING, claimed_at__lt=services.delivery_stale_before()),
        pk=delivery_id,
    ).update(status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, claimed_at=timezone.now())
    if not claimed:
        if (
            self.request.is_eager
            or not EventDelivery.objects.filter(
                pk=delivery_id, status=DeliveryStatus.SENDING
            ).exists()
        ):
            return "skipped"
        # Another worker is sending it, or died doing so (its pool process was killed and the
        # broker redelivered at once): look again once that attempt would count as stale.
        raise self.retry(countdown=settings.PEDIGREE_DELIVERY_STALE_SECONDS, max_retries=None)
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
    """Periodic (celery beat): delete the uploads no version took in time, and old inspections."""
    services.inspections_sweep()
    return [str(upload_id) for upload_id in services.uploads_sweep()]


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.PEDIGREE_EVALUATION_TIME_LIMIT,
    time_limit=settings.PEDIGREE_EVALUATION_TIME_LIMIT + 30,
)
def inspect_artefact(inspection_id: str) -> str:
    """Hash and validate the files of one inspection too large for a request."""
    return services.artefact_inspection_run(inspection_id=inspection_id)


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def seal_audit_chain() -> int:
    """Periodic (celery beat): seal audit entries whose committing process died before sealing."""
    return audit_seal()


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def relay_outbox() -> list[int]:
    """Periodic (celery beat): publish the outbox messages no relay sent after their commit
    (the broker was down, or the committing process died)."""
    return outbox_relay().sent


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def sweep_deliveries() -> dict[str, list[int]]:
    """Periodic (celery beat): send again the deliveries whose worker died mid-POST or whose
    message the broker lost."""
    report = services.deliveries_sweep()
    return {"resent": report.resent, "republished": report.republished, "failed": report.failed}


@shared_task(acks_late=True, soft_time_limit=1800, time_limit=1860)
def recheck_compliance(version_ids: list[int] | None = None) -> int:
    """After an input of these versions' gates changed (None: every version), and periodically
    (celery beat): recompute their compliance; returns how many were assessed."""
    return len(services.compliance_recheck(version_ids=version_ids))


@shared_task(acks_late=True, soft_time_limit=120, time_limit=180)
def write_audit_checkpoint() -> int | None:
    """Periodic (celery beat): sign the audit chain's head; None when no signing key is set."""
    try:
        return audit_checkpoint_write().pk
    except CheckpointKeyMissing:
        logger.warning("no audit checkpoint: PEDIGREE_AUDIT_SIGNING_KEY is not set")
        return None
