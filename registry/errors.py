"""Errors raised by services. Each carries a user-facing message and maps to one HTTP status."""

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, Self, TypeVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError, InterfaceError, OperationalError
from django.db import models as dj_models
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as CacheConnectionError
from redis.exceptions import TimeoutError as CacheTimeout

T = TypeVar("T")

# Transient faults: the database unreachable or its connection lost, a lock wait timed out, a
# deadlock or serialization failure that the service's own retries did not overcome (all
# OperationalError), the broker unreachable, and a Redis cache (the rate-limit counters)
# unreachable or slow. The API answers them 503 with Retry-After, the admin with "nothing was
# changed, try again".
TRANSIENT_ERRORS = (
    OperationalError,
    InterfaceError,
    BrokerError,
    ConnectionError,
    CacheConnectionError,
    CacheTimeout,
)
# Seconds a client should wait before retrying after one: such faults (a deadlock retried to its
# limit, a database failover, a broker restart) usually pass within a few.
RETRY_AFTER_SECONDS = 5


class ServiceError(Exception):
    status = 400
    code = "invalid"

    def __init__(
        self, message: str, *, fields: dict[str, list[str]] | None = None, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code:
            self.code = code

    @classmethod
    def for_field(cls, field: str, message: str, *, code: str | None = None) -> Self:
        return cls(message, fields={field: [message]}, code=code)


class InvalidInput(ServiceError):
    status = 400
    code = "invalid"


class PermissionRefused(ServiceError):
    status = 403
    code = "permission_denied"


class NotFound(ServiceError):
    status = 404
    code = "not_found"


class TooLarge(ServiceError):
    status = 413
    code = "too_large"


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class Unavailable(ServiceError):
    """A service Pedigree depends on (the Hugging Face Hub) could not be reached; answered 503
    with Retry-After."""

    status = 503
    code = "unavailable"


class GatheredErrors(InvalidInput):
    """Several `InvalidInput`s answered as one: the first's message and code, every field."""

    def __init__(self, errors: list[InvalidInput], fields: dict[str, list[str]]) -> None:
        first, more = errors[0], len(errors) - 1
        super().__init__(
            f"{first.message} (and {more} more problem{'s' * (more > 1)}; see fields)",
            fields=fields,
            code=first.code,
        )
        self.errors = errors


class FieldErrors:
    """Runs independent checks and gathers their `InvalidInput`s, so that one answer names every
    field to fix instead of the first. Other errors (conflict, permission) still stop at once."""

    def __init__(self) -> None:
        self.errors: list[InvalidInput] = []
        self.fields: dict[str, list[str]] = {}

    def add(self, error: InvalidInput) -> None:
        if isinstance(error, GatheredErrors):
            for gathered in error.errors:
                self.add(gathered)
            return
        self.errors.append(error)
        for name, messages in (error.fields or {"non_field_errors": [error.message]}).items():
            known = self.fields.setdefault(name, [])
            known.extend(message for message in messages if message not in known)

    def collect(self, check: Callable[[], T]) -> T | None:
        """`check()`'s result, or None when it raised `InvalidInput` (which is kept)."""
        try:
            return check()
        except InvalidInput as error:
            self.add(error)
            return None

    def raise_if_any(self) -> None:
        """Raise the one error gathered as it is, or all of them as one."""
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise GatheredErrors(self.errors, self.fields)


def invalid_from_django(error: DjangoValidationError) -> InvalidInput:
    """Turn a model `full_clean()` error into the service error shape."""
    if hasattr(error, "error_dict"):
        fields = {
            name: [str(m) for e in errors for m in e.messages]
            for name, errors in error.error_dict.items()
        }
        first_field, first_messages = next(iter(fields.items()))
        return InvalidInput(f"{first_field}: {first_messages[0]}", fields=fields)
    return InvalidInput("; ".join(error.messages))


class _CheckErrors(logging.Filter):
    """Catches the database errors Django's constraint validation logs and then swallows."""

    def __init__(self) -> None:
        super().__init__()
        self.thread = threading.get_ident()
        self.errors: list[DatabaseError] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread == self.thread and isinstance(record.args, tuple):
            self.errors.extend(arg for arg in record.args if isinstance(arg, DatabaseError))
        return True


@contextmanager
def _database_errors_reraised() -> Iterator[None]:
    logger = logging.getLogger("django.db.models")
    caught = _CheckErrors()
    logger.addFilter(caught)
    try:
        yield
    except DjangoValidationError:
        if caught.errors:
            raise caught.errors[0] from None
        raise
    finally:
        logger.removeFilter(caught)


def full_clean(obj: dj_models.Model, **options: Any) -> None:
    """`obj.full_clean(**options)`, except that a database error met while validating a
    conditional constraint is raised as such. Django's `Q.check()` logs it and reports the
    constraint as violated, which would answer a transient outage with a false conflict ("this
    model already has a version in production") instead of a retryable 503."""
    with _database_errors_reraised():
        obj.full_clean(**options)
