"""The transactional outbox: Celery tasks are written to `OutboxMessage` in the transaction of the
change that needs them, and relayed to the broker after the commit.

A change and the work it starts (an evaluation, a webhook delivery) commit together or not at
all; publishing happens after the commit, so a broker outage can only delay the work: the
message stays pending and the next relay sends it (right after each commit, every
`PEDIGREE_OUTBOX_RELAY_SECONDS` from beat, and continuously from `manage.py outbox_relay`).
Delivery is at least once (a relay that dies between publishing and marking the message sent
publishes it again), which the tasks tolerate: each claims its work with a conditional UPDATE.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string
from kombu.exceptions import OperationalError as BrokerError

from registry.models import OutboxMessage

logger = logging.getLogger(__name__)

# A claimed message whose relay died is relayed again after this long.
CLAIM_LEASE = timedelta(seconds=60)
MAX_BACKOFF_SECONDS = 300
BATCH = 200


def outbox_add(*, task: str, args: Sequence[object], queue: str) -> OutboxMessage:
    """Write a task to send once the current transaction commits (and until the broker takes it).
    `task` is the Celery task's dotted path."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("outbox_add must be called inside the transaction of the change")
    message = OutboxMessage.objects.create(task=task, args=list(args), queue=queue)
    transaction.on_commit(partial(outbox_relay, ids=[message.pk]), robust=True)
    return message


def outbox_holds(*, task: str, args: Sequence[object]) -> bool:
    """Whether a message for this task and these arguments is still waiting to be published
    (the broker was down): the work is delayed, not lost."""
    return OutboxMessage.objects.filter(sent_at__isnull=True, task=task, args=list(args)).exists()


@dataclass
class RelayReport:
    sent: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)


def _claim(message_id: int) -> bool:
    now = timezone.now()
    return bool(
        OutboxMessage.objects.filter(
            pk=message_id, sent_at__isnull=True, available_at__lte=now
        ).update(available_at=now + CLAIM_LEASE)
    )


def _publish(message: OutboxMessage) -> None:
    # Eager (no broker): apply_async runs the task here, or in a thread for evaluations.
    import_string(message.task).apply_async(args=message.args, queue=message.queue)


def outbox_relay(*, ids: Sequence[int] | None = None, limit: int = BATCH) -> RelayReport:
    """Publish pending messages (those in `ids`, or every one due), oldest first, each claimed
    first so concurrent relays never send one twice at once. A failed publish is recorded and
    backed off exponentially; the message stays pending."""
    report = RelayReport()
    pending = OutboxMessage.objects.filter(sent_at__isnull=True, available_at__lte=timezone.now())
    if ids is not None:
        pending = pending.filter(pk__in=ids)
    for message in list(pending.order_by("id")[:limit]):
        if not _claim(message.pk):
            continue
        try:
            _publish(message)
        except Exception as error:
            # The broker unreachable (or, in-process, the task itself failed): try again later.
            delay = min(MAX_BACKOFF_SECONDS, 2 ** min(message.attempts, 16))
            OutboxMessage.objects.filter(pk=message.pk).update(
                attempts=F("attempts") + 1,
                last_error=f"{type(error).__name__}: {error}"[:2000],
                available_at=timezone.now() + timedelta(seconds=delay),
            )
            logger.warning("outbox #%s not sent, retry in %s s: %s", message.pk, delay, error)
            report.failed.append(message.pk)
            if isinstance(error, BrokerError | OSError):
                break  # the broker is down: the rest would fail the same way
            continue
        OutboxMessage.objects.filter(pk=message.pk).update(
            sent_at=timezone.now(), attempts=F("attempts") + 1, last_error=""
        )
        report.sent.append(message.pk)
    return report
