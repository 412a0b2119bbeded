"""One JSON error shape for every API failure:

{"error": {"status": 400, "code": "invalid", "message": "...", "fields": {"name": ["..."]}}}
"""

import logging
from collections.abc import Callable

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.db import IntegrityError, InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from kombu.exceptions import OperationalError as BrokerError
from redis.exceptions import ConnectionError as CacheConnectionError
from redis.exceptions import TimeoutError as CacheTimeout
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from registry.api.throttling import FailedAuthenticationThrottle
from registry.errors import ServiceError

logger = logging.getLogger(__name__)

NOT_FOUND = "Not found, or you do not have access to it."
# Seconds a client should wait before retrying a 503: transient faults (a deadlock retried to
# its limit, a database failover, a broker restart) usually pass within a few.
RETRY_AFTER_SECONDS = 5
# Transient: the database unreachable or its connection lost, a lock wait timed out, a deadlock
# or serialization failure the service's own retries did not overcome (all OperationalError),
# the broker unreachable, and a Redis cache (the rate-limit counters) unreachable or slow.
TRANSIENT_ERRORS = (
    OperationalError,
    InterfaceError,
    BrokerError,
    ConnectionError,
    CacheConnectionError,
    CacheTimeout,
)


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    """DRF error details (nested dicts/lists) → {"field.sub": ["message", ...]}."""
    if isinstance(detail, dict):
        flat: dict[str, list[str]] = {}
        for key, value in detail.items():
            if isinstance(key, int):  # DRF reports bad items of a list by their index
                flat.update(_flatten(value, f"{prefix}[{key}]"))
                continue
            name = key if key != "non_field_errors" else ""
            flat.update(_flatten(value, f"{prefix}.{name}".strip(".") if name else prefix))
        return flat
    if isinstance(detail, list):
        if all(not isinstance(item, dict | list) for item in detail):
            return {prefix or "non_field_errors": [str(item) for item in detail]}
        flat = {}
        for index, item in enumerate(detail):
            flat.update(_flatten(item, f"{prefix}[{index}]"))
        return flat
    return {prefix or "non_field_errors": [str(detail)]}


def error_response(status_code: int, code: str, message: str, fields=None, headers=None):
    body = {"error": {"status": status_code, "code": code, "message": message}}
    if fields:
        body["error"]["fields"] = fields
    return Response(body, status=status_code, headers=headers)


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if exc.status == 503 else None
        return error_response(exc.status, exc.code, exc.message, exc.fields, headers=headers)
    if isinstance(exc, TRANSIENT_ERRORS):
        logger.warning("answered 503 for a transient fault: %r", exc)
        return error_response(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "unavailable",
            "Pedigree cannot reach its database or broker right now, or the change collided "
            f"with a concurrent one; nothing was changed. Retry in {RETRY_AFTER_SECONDS} s.",
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )
    if isinstance(exc, RequestDataTooBig):
        code, message = _STATUS_MESSAGES[413]
        return error_response(413, code, message)
    if isinstance(exc, IntegrityError):
        return error_response(
            status.HTTP_409_CONFLICT,
            "conflict",
            "The change conflicts with existing data (a concurrent request may have created "
            "it); reload and try again.",
        )
    if isinstance(exc, Http404):
        exc = exceptions.NotFound(NOT_FOUND)
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if response.status_code == 401 and "request" in context:
        FailedAuthenticationThrottle().record_failure(context["request"])
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        first_field, first_messages = next(iter(fields.items()))
        where = "" if first_field == "non_field_errors" else f"{first_field}: "
        message = f"{where}{first_messages[0]}"
        code = "invalid"
    else:
        fields = None
        message = str(exc.detail) if not isinstance(exc.detail, dict | list) else str(exc)
        code = exc.default_code if hasattr(exc, "default_code") else "error"
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            message += " Send 'Authorization: Token <your token>' (see README, 'API tokens')."
        if isinstance(exc, exceptions.ParseError):
            message += " Send a valid JSON object with 'Content-Type: application/json'."
    response.data = {"error": {"status": response.status_code, "code": code, "message": message}}
    if fields:
        response.data["error"]["fields"] = fields
    return response


# What each status means, for errors that reach the envelope without a message of their own.
_STATUS_MESSAGES = {
    400: ("invalid", "The request is malformed; check its syntax and headers."),
    403: ("permission_denied", "You do not have permission to do this."),
    404: ("not_found", NOT_FOUND),
    405: ("method_not_allowed", "This method is not allowed here; /api/docs/ lists the methods."),
    413: (
        "too_large",
        "The request body is too large; send less (the server's DATA_UPLOAD_MAX_MEMORY_SIZE "
        "bounds JSON bodies, PEDIGREE_MAX_UPLOAD_BYTES uploads).",
    ),
    500: ("server_error", "The server failed to answer; the error is logged. Try again later."),
}


def envelope(status_code: int, *, message: str | None = None) -> JsonResponse:
    code, default = _STATUS_MESSAGES.get(status_code, ("error", "The request failed."))
    return JsonResponse(
        {"error": {"status": status_code, "code": code, "message": message or default}},
        status=status_code,
    )


class ApiErrorMiddleware:
    """Every error under /api/ answers in the envelope, whatever DEBUG says: a URL no route
    matches (a malformed version ref included), a body too large, a server error, a method not
    allowed; other paths keep Django's HTML pages."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            if response.status_code == 404:
                return envelope(
                    404,
                    message=f"{NOT_FOUND} No API endpoint matches {request.path}; versions are "
                    "named by id or MODEL@VERSION, and /api/docs/ lists the endpoints.",
                )
            return envelope(response.status_code)
        return response
