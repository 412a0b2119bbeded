"""The error every way of reading the Hub raises."""

from typing import Literal

ErrorKind = Literal["invalid", "not_found", "forbidden", "unavailable"]


class HubError(Exception):
    """An upstream model could not be read. `kind` picks the HTTP status family; `field` names
    the card field at fault, when one is."""

    def __init__(
        self, message: str, *, code: str, kind: ErrorKind = "invalid", field: str | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.kind = kind
        self.field = field


def first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
