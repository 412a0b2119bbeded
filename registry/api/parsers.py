"""The JSON parser of every API endpoint: bodies nested deeper than `PEDIGREE_MAX_JSON_DEPTH`
are a 400, never a RecursionError (a body nested 100,000 deep took the server to a 500), and so
are bodies with a NUL character in a string or key, which PostgreSQL can store in neither text
nor jsonb (a NUL in a model name or in hyperparameters was a 500 there, a 400 on SQLite)."""

from collections.abc import Iterable
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _depth_and_nul(value: Any) -> tuple[int, bool]:
    """How deeply lists and objects nest in `value` (a scalar is 0), and whether a string or
    key in it holds a NUL character; without recursion."""
    deepest, nul, stack = 0, False, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, str):
            nul = nul or "\x00" in item
            continue
        children: Iterable[Any]
        if isinstance(item, dict):
            nul = nul or any("\x00" in key for key in item)
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest, nul


class BoundedJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.PEDIGREE_MAX_JSON_DEPTH
        message = (
            f"The JSON body nests lists and objects more than {limit} deep "
            "(PEDIGREE_MAX_JSON_DEPTH); send a flatter body."
        )
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError(message) from None
        depth, nul = _depth_and_nul(data)
        if depth > limit:
            raise ParseError(message)
        if nul:
            raise ParseError(
                "A string in the JSON body contains a NUL character (\\u0000); remove it."
            )
        return data
