"""Bounded retry of a whole write transaction that the database aborted to break a deadlock or
a serialization conflict (see "Lock order" in docs/architecture.md).

A retried transaction starts from scratch: nothing of the aborted attempt was committed and its
on-commit callbacks (audit sealing, the outbox relay) were dropped with it. Past the last
attempt the error propagates and the API answers 503 with Retry-After.
"""

import functools
import logging
import random
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from django.db import OperationalError, transaction

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

ATTEMPTS = 4
# SQLSTATEs PostgreSQL gives a transaction it aborts for others' sake: deadlock_detected,
# serialization_failure. Repeating the transaction is the documented response to both.
_RETRYABLE_SQLSTATES = frozenset({"40P01", "40001"})


def is_retryable(error: OperationalError) -> bool:
    return getattr(error.__cause__, "sqlstate", None) in _RETRYABLE_SQLSTATES


def retry_transaction(function: Callable[P, R]) -> Callable[P, R]:
    """Run `function` (a service that opens its own transaction) again, up to `ATTEMPTS` times
    in all, when the database aborts it as a deadlock victim or a serialization failure.

    Inside a caller's transaction it runs once: only the outermost transaction can be repeated.
    """

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        if transaction.get_connection().in_atomic_block:
            return function(*args, **kwargs)
        for attempt in range(1, ATTEMPTS):
            try:
                return function(*args, **kwargs)
            except OperationalError as error:
                if not is_retryable(error):
                    raise
                logger.info("%s: retrying after %s (attempt %s)", function.__name__, error, attempt)
                # Jittered backoff, so the transactions that collided do not collide again.
                time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311
        return function(*args, **kwargs)

    return run
