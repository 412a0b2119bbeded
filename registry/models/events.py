"""Webhooks, their deliveries, and the transactional outbox."""

from django.db import models
from django.db.models import Q
from django.utils import timezone

from registry.models.catalogue import (
    choices_check,
)


class WebhookEndpoint(models.Model):
    """An outgoing webhook: governance events are POSTed here, signed with HMAC-SHA256."""

    name = models.CharField(max_length=128, unique=True)
    url = models.URLField(max_length=1024)
    secret = models.CharField(max_length=128)
    events = models.JSONField(default=list, blank=True, help_text="Event kinds; empty = all.")
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class DeliveryStatus(models.TextChoices):
    PENDING = "pending"
    SENDING = "sending"
    DELIVERED = "delivered"
    FAILED = "failed"


class EventDelivery(models.Model):
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    event = models.CharField(max_length=64)
    payload = models.JSONField()
    status = models.CharField(
        max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # When the current attempt began: one `sending` for longer than the webhook timeout lost
    # its worker, and a redelivered task or the sweep takes it over.
    claimed_at = models.DateTimeField(null=True, blank=True)
    # When it last became `pending` (created, swept back, or published again by the sweep): one
    # `pending` for much longer had its message lost by the broker.
    queued_at = models.DateTimeField(default=timezone.now)
    republished = models.PositiveIntegerField(default=0)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "event deliveries"
        constraints = [choices_check("status", DeliveryStatus, "delivery_status_valid")]

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint}"


class OutboxMessage(models.Model):
    """A Celery task to send, written in the transaction of the change that needs it (the
    transactional outbox): the relay publishes it after the commit, and again until the broker
    takes it, so a broker outage delays work and loses none (`registry.outbox`)."""

    task = models.CharField(max_length=200)
    args = models.JSONField(default=list)
    queue = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)
    # Not before: a failed publish backs off, and a relay claims a message by moving it ahead
    # (a lease, so one whose relay died is picked up again).
    available_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["available_at"],
                condition=Q(sent_at__isnull=True),
                name="outbox_pending_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.task}{self.args}"
