"""Progress reports for loops: a live bar in a terminal, one line per loop anywhere else.

In a terminal the bar is tqdm's when tqdm is installed, else a small text bar; both redraw
with carriage returns. Into a pipe or a log file (``file.isatty()`` false) nothing is
redrawn: one line is written when the loop ends.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator


class _Report:
    """A text bar redrawn with ``\\r`` after every item (``live``), or one line after the loop."""

    def __init__(self, iterable: Iterable, total: int, desc: str, file, live: bool):
        self.iterable, self.total, self.desc = iterable, total, desc
        self.file, self.live, self.postfix = file, live, ""
        self.start = time.perf_counter()

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def _line(self, n: int) -> str:
        bar = ""
        if self.live:
            done = int(24 * n / max(self.total, 1))
            bar = " [" + "#" * done + "-" * (24 - done) + "]"
        elapsed = time.perf_counter() - self.start
        return f"{self.desc}{bar} {n}/{self.total} {elapsed:5.1f}s {self.postfix}"

    def __iter__(self) -> Iterator:
        n = 0
        for item in self.iterable:
            yield item
            n += 1
            if self.live:
                self.file.write("\r" + self._line(n))
                self.file.flush()
        self.file.write(("" if self.live else self._line(n).rstrip()) + "\n")
        self.file.flush()


class _Silent:
    def __init__(self, iterable: Iterable):
        self.iterable = iterable

    def set_postfix_str(self, text: str) -> None:
        pass

    def __iter__(self) -> Iterator:
        return iter(self.iterable)


def progress(iterable: Iterable, total: int, desc: str = "", file=None, enabled: bool = True):
    """Wrap ``iterable`` in a progress report with ``set_postfix_str``.

    Args:
        iterable: the loop's items.
        total: the number of items (for the bar and the count).
        desc: text before the bar, e.g. ``"epoch 1/8"``.
        file: where to write (default ``sys.stderr``).
        enabled: ``False`` reports nothing.
    """
    if not enabled:
        return _Silent(iterable)
    file = file or sys.stderr
    isatty = getattr(file, "isatty", None)
    if not (isatty and isatty()):
        return _Report(iterable, total, desc, file, live=False)
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _Report(iterable, total, desc, file, live=True)
    return tqdm(iterable, total=total, desc=desc, file=file, leave=True)
