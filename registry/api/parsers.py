"""The JSON parser of every API endpoint: bodies nested deeper than `PEDIGREE_MAX_JSON_DEPTH`
are a 400, never a RecursionError (a body nested 100,000 deep took the server to a 500)."""

from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


def _depth(value: Any) -> int:
    """How deeply lists and objects nest in `value` (a scalar is 0), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = (
            item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        )
        for child in children:
            if isinstance(child, dict | list):
                stack.append((child, level + 1))
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
    return deepest


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
        if _depth(data) > limit:
            raise ParseError(message)
        return data
