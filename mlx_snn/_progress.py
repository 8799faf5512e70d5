"""Progress bars: tqdm when it is installed, else a small built-in text bar."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator


class _TextBar:
    def __init__(self, iterable: Iterable, total: int, desc: str, file):
        self.iterable, self.total, self.desc, self.file = iterable, total, desc, file
        self.postfix = ""
        self.start = time.perf_counter()

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def _draw(self, n: int, end: str = "") -> None:
        width = 24
        done = int(width * n / max(self.total, 1))
        elapsed = time.perf_counter() - self.start
        bar = "#" * done + "-" * (width - done)
        self.file.write(
            f"\r{self.desc} [{bar}] {n}/{self.total} {elapsed:5.1f}s {self.postfix}{end}"
        )
        self.file.flush()

    def __iter__(self) -> Iterator:
        n = 0
        for item in self.iterable:
            yield item
            n += 1
            self._draw(n)
        self._draw(n, end="\n")


def progress(iterable: Iterable, total: int, desc: str = "", file=None):
    """Wrap ``iterable`` in a progress bar with ``set_postfix_str``."""
    file = file or sys.stderr
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return _TextBar(iterable, total, desc, file)
    return tqdm(iterable, total=total, desc=desc, file=file, leave=True)
