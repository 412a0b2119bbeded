"""The licence-expression validator the registry calls on every write of a licence field."""

import functools
from typing import Any

from licensing.expressions import LicenceError, ParsedExpression, parse_expression
from registry.errors import InvalidInput

NO_ASSERTION = "NOASSERTION"


@functools.lru_cache(maxsize=4096)
def parsed(text: str) -> ParsedExpression:
    """`parse_expression`, cached: stored expressions are few and read on every check."""
    return parse_expression(text)


def normalise_licence_field(field: str, value: Any) -> str:
    """The canonical SPDX text of `value` for `field`; '' stays '' (no licence declared).

    Raises InvalidInput naming the field and, for unknown identifiers, each unknown symbol.
    """
    if not isinstance(value, str):
        raise InvalidInput.for_field(
            field, "Give the licence as an SPDX expression, e.g. 'Apache-2.0' or 'MIT OR CC0-1.0'."
        )
    if not value.strip():
        return ""
    if value.strip().upper() == NO_ASSERTION:
        return NO_ASSERTION  # SPDX's "no licence information", e.g. a Hub card without one
    try:
        return parsed(value.strip()).normalized
    except LicenceError as error:
        message = str(error)
        if error.unknown_symbols:
            message = f"Unknown symbol(s) {', '.join(error.unknown_symbols)}: {message}"
        raise InvalidInput(f"{field}: {message}", fields={field: [message]}) from None
