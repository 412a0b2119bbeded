"""What the client raises: the server's JSON error envelope as exceptions.

{"error": {"status": 404, "code": "not_found", "message": "...", "fields": {"name": ["..."]}}}
becomes `NotFound(404, "not_found", "...", {"name": ["..."]})`; problems the client finds
itself (no token, a server it cannot reach) carry `status` None.
"""

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import requests

    from pedigree_client.results import Decision


class CliError(Exception):
    """A failure to show the user as one line; `exit_code` 2 means usage/connection trouble."""

    def __init__(self, message: str, *, exit_code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class PedigreeError(CliError):
    """An error answer of the API (or one the client found before asking).

    `code` and `message` are the envelope's, `fields` maps each bad input field to its
    messages, and `envelope` is the whole `error` object (a refused promotion adds its
    `decision` there). A CliError too, so `pedigree` reports it like its own.
    """

    def __init__(
        self,
        status: int | None,
        code: str,
        message: str,
        fields: Mapping[str, list[str]] | None = None,
        *,
        envelope: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.fields: dict[str, list[str]] = dict(fields or {})
        self.envelope: dict[str, Any] = dict(envelope or {})
        # Seconds the server asked to wait (503/429), when it said.
        self.retry_after = retry_after

    def __str__(self) -> str:
        head = self.message if self.status is None else f"{self.message} (HTTP {self.status})"
        # The message already names its first field; list the others below it.
        extra = [
            f"  {name}: {' '.join(messages)}"
            for name, messages in self.fields.items()
            if messages and f"{name}: {messages[0]}" not in self.message
        ]
        return "\n".join([head, *extra])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.status!r}, {self.code!r}, {self.message!r})"


class InvalidInput(PedigreeError):
    """400: the request is wrong; `fields` says where."""


class PermissionDenied(PedigreeError):
    """401 or 403: no valid token, or the token's user may not do this."""


class NotFound(PedigreeError):
    """404: no such object among those the token's user may see."""


class Conflict(PedigreeError):
    """409: the change conflicts with the registry's state (a taken label, a refused gate)."""


class PromotionRefused(Conflict):
    """409 from a promotion the gate refused; `decision` is the recorded refusal."""

    @property
    def decision(self) -> "Decision":
        from pedigree_client.results import Decision

        return Decision.from_json(self.envelope["decision"])


class Unavailable(PedigreeError):
    """503 or 429 still answered after the retries, or no answer at all."""


_BY_STATUS: dict[int, type[PedigreeError]] = {
    400: InvalidInput,
    401: PermissionDenied,
    403: PermissionDenied,
    404: NotFound,
    409: Conflict,
    429: Unavailable,
    503: Unavailable,
}
_BY_CODE: dict[str, type[PedigreeError]] = {"gate_failed": PromotionRefused}


def error_from_response(
    response: "requests.Response", *, retry_after: float | None = None
) -> PedigreeError:
    """The exception for an error answer: its envelope when it has one (a proxy's or a
    router's page has none)."""
    status = response.status_code
    cls = _BY_STATUS.get(status, PedigreeError)
    try:
        envelope = response.json()["error"]
        code, message = str(envelope["code"]), str(envelope["message"])
    except (ValueError, KeyError, TypeError):
        message = f"{response.reason or 'Error'} from {response.url}"
        return cls(status, "error", message, retry_after=retry_after)
    fields = envelope.get("fields")
    cls = _BY_CODE.get(code, cls)
    return cls(
        status,
        code,
        message,
        fields if isinstance(fields, dict) else None,
        envelope=envelope,
        retry_after=retry_after,
    )


def error_from_envelope(envelope: Mapping[str, Any]) -> PedigreeError:
    """The exception for an error envelope the server stored (a task's failure) rather than
    answered."""
    status = envelope.get("status")
    code = str(envelope.get("code") or "error")
    fields = envelope.get("fields")
    cls = _BY_CODE.get(code) or _BY_STATUS.get(status, PedigreeError)  # type: ignore[arg-type]
    return cls(
        status if isinstance(status, int) else None,
        code,
        str(envelope.get("message") or "The server refused the request."),
        fields if isinstance(fields, dict) else None,
        envelope=envelope,
    )
