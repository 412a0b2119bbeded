"""Errors raised by services. Each carries a user-facing message and maps to one HTTP status."""

from typing import Self

from django.core.exceptions import ValidationError as DjangoValidationError


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


class Conflict(ServiceError):
    status = 409
    code = "conflict"


class Unavailable(ServiceError):
    """A service Pedigree depends on (the Hugging Face Hub) could not be reached."""

    status = 503
    code = "unavailable"


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
