"""SPDX licence expressions checked against the licence catalogue.

Only symbols the catalogue knows are accepted: SPDX licence ids (and their deprecated aliases,
e.g. GPL-2.0 -> GPL-2.0-only), SPDX exceptions after WITH, and the catalogue's own LicenseRefs.
Matching is case-insensitive and the result uses canonical ids. An arbitrary LicenseRef- is
refused: a licence the registry cannot describe cannot be checked by policy.
"""

from __future__ import annotations

import difflib
import functools
import re
from dataclasses import dataclass, field

from boolean.boolean import Expression, ParseError
from license_expression import (
    ExpressionError,
    LicenseSymbol,
    LicenseWithExceptionSymbol,
    Licensing,
)

from licensing.catalogue.loader import LicenceError, load_catalogue, load_exceptions

__all__ = [
    "MAX_ALTERNATIVES",
    "MAX_EXPRESSION_LENGTH",
    "LicenceError",
    "ParsedExpression",
    "alternatives",
    "get_licensing",
    "parse_expression",
]

MAX_EXPRESSION_LENGTH = 2000
# Expanding AND over OR multiplies branches; beyond this the expression is refused, not expanded.
MAX_ALTERNATIVES = 256

_FIX_HINT = "Use an SPDX id such as Apache-2.0, or a LicenseRef- defined in the catalogue."
_EMPTY_PARENTHESES = re.compile(r"\(\s*\)")


@dataclass(frozen=True)
class ParsedExpression:
    """A validated expression: `normalized` is the canonical text to store."""

    normalized: str
    symbols: list[str]
    exceptions: list[str]
    _tree: Expression = field(repr=False, compare=False)

    @property
    def licence_refs(self) -> list[str]:
        return [symbol for symbol in self.symbols if symbol.startswith("LicenseRef-")]

    def alternatives(self) -> list[list[str]]:
        return alternatives(self)


@functools.cache
def get_licensing() -> Licensing:
    """A Licensing that knows the catalogue's licences (with aliases) and the SPDX exceptions."""
    symbols = [LicenseSymbol(entry.id, aliases=entry.aliases) for entry in load_catalogue()]
    symbols += [
        LicenseSymbol(exception.id, aliases=exception.aliases, is_exception=True)
        for exception in load_exceptions()
    ]
    return Licensing(symbols)


def parse_expression(text: str) -> ParsedExpression:
    """Parse and validate an SPDX licence expression; raise LicenceError saying how to fix it."""
    if not isinstance(text, str):
        raise LicenceError("A licence expression must be text, e.g. 'Apache-2.0'.")
    source = text.strip()
    if not source:
        raise LicenceError(
            "The licence expression is empty. Give an SPDX expression such as 'Apache-2.0' or "
            "'MIT OR Apache-2.0'."
        )
    if len(source) > MAX_EXPRESSION_LENGTH:
        raise LicenceError(
            f"The licence expression is longer than {MAX_EXPRESSION_LENGTH} characters."
        )
    if _EMPTY_PARENTHESES.search(source):
        raise LicenceError(f"Invalid licence expression {source!r}: empty parentheses.")
    licensing = get_licensing()
    tree = _parse(licensing, source, strict=False)
    unknown = licensing.unknown_license_keys(tree, unique=True)
    if unknown:
        raise LicenceError(_unknown_message(unknown), unknown_symbols=unknown)
    # Strict parsing rejects exceptions used as licences and licences used after WITH.
    _parse(licensing, source, strict=True)

    licences: list[str] = []
    exceptions: list[str] = []
    for symbol in licensing.license_symbols(tree, unique=True, decompose=True):
        (exceptions if symbol.is_exception else licences).append(symbol.key)
    return ParsedExpression(
        normalized=str(tree), symbols=licences, exceptions=exceptions, _tree=tree
    )


def alternatives(expression: str | ParsedExpression) -> list[list[str]]:
    """The expression in disjunctive normal form: each inner list is one choice of licences
    that together satisfy it ("MIT OR (GPL-2.0-only AND CC-BY-4.0)" ->
    [["MIT"], ["GPL-2.0-only", "CC-BY-4.0"]]). A licence with an exception stays one item,
    e.g. "GPL-2.0-only WITH Classpath-exception-2.0". Redundant choices (a superset of another
    choice) are dropped.
    """
    parsed = parse_expression(expression) if isinstance(expression, str) else expression
    unique = _unique(_disjunctive_normal_form(get_licensing(), parsed._tree))
    return [
        list(conjunction)
        for conjunction in unique
        if not any(set(other) < set(conjunction) for other in unique)
    ]


def _parse(licensing: Licensing, source: str, *, strict: bool) -> Expression:
    try:
        tree = licensing.parse(source, validate=False, strict=strict)
    # license-expression signals some malformed input with IndexError or AssertionError from
    # its parser internals; all of them mean "this is not a valid expression".
    except (ExpressionError, ParseError, IndexError, AssertionError) as exc:
        detail = str(exc).rstrip(".") or "malformed expression"
        hint = (
            " Only SPDX licence exceptions (such as Classpath-exception-2.0) may follow WITH, "
            "and they may appear nowhere else."
            if strict
            else " Combine licence ids with AND, OR, WITH and parentheses."
        )
        raise LicenceError(f"Invalid licence expression {source!r}: {detail}.{hint}") from exc
    if tree is None:
        raise LicenceError(f"Invalid licence expression {source!r}: no licence in it.")
    return tree


def _unknown_message(unknown: list[str]) -> str:
    parts = []
    for key in unknown:
        suggestion = _closest_known(key)
        parts.append(f"{key!r} (did you mean {suggestion!r}?)" if suggestion else repr(key))
    message = f"Unknown licence identifier(s): {', '.join(parts)}. {_FIX_HINT}"
    refs = [key for key in unknown if key.casefold().startswith("licenseref-")]
    if refs:
        message += (
            f" {', '.join(map(repr, refs))} is not defined in the licence catalogue; ask "
            "compliance to add it before using it."
        )
    return message


def _closest_known(key: str) -> str | None:
    by_folded = _known_keys()
    matches = difflib.get_close_matches(key.casefold(), list(by_folded), n=1, cutoff=0.85)
    return by_folded[matches[0]] if matches else None


@functools.cache
def _known_keys() -> dict[str, str]:
    keys = {entry.id.casefold(): entry.id for entry in load_catalogue()}
    keys.update({exception.id.casefold(): exception.id for exception in load_exceptions()})
    return keys


def _disjunctive_normal_form(licensing: Licensing, node: Expression) -> list[tuple[str, ...]]:
    if isinstance(node, LicenseWithExceptionSymbol):
        return [(node.render(),)]
    if isinstance(node, LicenseSymbol):
        return [(node.key,)]
    branches = [_disjunctive_normal_form(licensing, arg) for arg in node.args]
    if isinstance(node, licensing.OR):
        result = [conjunction for branch in branches for conjunction in branch]
    elif isinstance(node, licensing.AND):
        result = [()]
        for branch in branches:
            result = _unique([_merge(left, right) for left in result for right in branch])
            if len(result) > MAX_ALTERNATIVES:
                break
    else:
        raise LicenceError(f"Unsupported licence expression operator in {node!s}.")
    if len(result) > MAX_ALTERNATIVES:
        raise LicenceError(
            f"The licence expression allows more than {MAX_ALTERNATIVES} combinations of "
            "licences; simplify it."
        )
    return result


def _unique(conjunctions: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """Drop conjunctions naming the same licences as an earlier one, keeping order."""
    seen: set[frozenset[str]] = set()
    unique = []
    for conjunction in conjunctions:
        key = frozenset(conjunction)
        if key not in seen:
            seen.add(key)
            unique.append(conjunction)
    return unique


def _merge(left: tuple[str, ...], right: tuple[str, ...]) -> tuple[str, ...]:
    return left + tuple(item for item in right if item not in left)
