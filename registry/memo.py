"""Reads remembered for the length of one answer.

A gate evaluation and the redaction of its answer ask several apps for the same thing (the
version's ancestry: one recursive walk of the lineage each time). Inside `read_memo()`, a read
wrapped in `remembered(key, read)` runs once and its result is shared; outside it every call
reads afresh, so nothing is remembered past the block that opened it. Only for blocks that read
what they remember without writing it.
"""

from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar

T = TypeVar("T")

_MEMO: ContextVar[dict[Hashable, Any] | None] = ContextVar("pedigree_read_memo", default=None)


@contextmanager
def read_memo() -> Iterator[None]:
    """Remember reads until the block ends (a block inside another shares the outer memo)."""
    if _MEMO.get() is not None:
        yield
        return
    token = _MEMO.set({})
    try:
        yield
    finally:
        _MEMO.reset(token)


def remembered(key: Hashable, read: Callable[[], T]) -> T:
    """`read()`, once per `read_memo()` block for `key`; afresh outside one."""
    memo = _MEMO.get()
    if memo is None:
        return read()
    if key not in memo:
        memo[key] = read()
    value: T = memo[key]
    return value
