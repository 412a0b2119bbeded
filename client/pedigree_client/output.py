"""Terminal-aware output: colour and progress bars for people, plain lines for CI logs.

Progress goes to stderr, so `--json` on stdout stays parseable: a tqdm bar when stderr is a
terminal, otherwise a line at each change of status and each tenth of the work. Colour only
on a terminal, and never when NO_COLOR is set (https://no-color.org).
"""

import os
import sys
import time
from types import TracebackType
from typing import Any, TextIO

GREEN = "\x1b[32m"
RED = "\x1b[31m"
RESET = "\x1b[0m"


def wants_colour(stream: TextIO) -> bool:
    return stream.isatty() and not os.environ.get("NO_COLOR")


def paint(text: str, colour: str, *, enabled: bool) -> str:
    return f"{colour}{text}{RESET}" if enabled else text


def _size(count: float) -> str:
    """1536 -> "1.5 KiB"."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            break
        count /= 1024
    return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"


def _amount(done: int, total: int | None, unit: str | None) -> str:
    """How much is done: "1.5 MiB of 3.0 MiB (50%)", "20 of 43 samples (46%)" or "20 samples"."""

    def count(number: int) -> str:
        return _size(number) if unit == "B" else f"{number:,}"

    units = "" if unit == "B" else f" {unit}s"
    if not total:
        return f"{count(done)}{units}"
    return f"{count(done)} of {count(total)}{units} ({done * 100 // total}%)"


class Progress:
    """Progress of one piece of work, counted in `unit`s (None: only the time it takes);
    `update` it, and use it as a context manager."""

    def __init__(self, desc: str, *, total: int | None = None, unit: str | None = "B") -> None:
        self.desc = desc
        self.total = total
        self.unit = unit
        self.done = 0
        self.status = ""
        self._stream = sys.stderr
        self._started = time.monotonic()
        self._bar: Any = None
        self._printed: tuple[str, int] | None = None
        if self._stream.isatty():
            # Imported only for a terminal: it is a third of `pedigree`'s start-up time.
            from tqdm import tqdm

            self._bar = tqdm(
                total=total,
                desc=desc,
                unit=unit or "it",
                unit_scale=unit == "B",
                unit_divisor=1024,
                file=self._stream,
                leave=False,
                bar_format=None if unit else "{desc} {elapsed}",
            )

    def update(self, done: int, *, total: int | None = None, status: str = "") -> None:
        """Record that `done` units of `total` are done, in `status` (e.g. "running")."""
        changed = bool(status) and status != self.status
        self.done = done
        self.total = total or self.total
        self.status = status or self.status
        if self._bar is not None:
            if self.total and self._bar.total != self.total:
                self._bar.reset(total=self.total)
            if changed:
                self._bar.set_postfix_str(self.status)
            # tqdm redraws at most every mininterval, however often work reports.
            self._bar.update(done - self._bar.n)
            return
        tenth = done * 10 // self.total if self.total else 0
        if self._printed != (self.status, tenth):
            self._print_line()
            self._printed = (self.status, tenth)

    def advance(self, count: int) -> None:
        self.update(self.done + count)

    def tick(self) -> None:
        """Redraw the bar (elapsed time) while waiting for work that reports no progress."""
        if self._bar is not None:
            self._bar.refresh()

    def _print_line(self) -> None:
        parts = [f"{self.desc}:"]
        if self.status:
            parts.append(self.status)
        if self.total or self.done:
            parts.append(_amount(self.done, self.total, self.unit))
        print(" ".join(parts), file=self._stream, flush=True)

    def __enter__(self) -> "Progress":
        if self._bar is None and self.unit is None:  # no updates will say it started
            print(f"{self.desc}…", file=self._stream, flush=True)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
        elif kind is None:
            elapsed = time.monotonic() - self._started
            print(f"{self.desc}: done in {elapsed:.1f} s", file=self._stream, flush=True)
