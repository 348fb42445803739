"""A small progress bar on stderr with rate and ETA (silent when asked)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["ProgressBar"]


class ProgressBar:
    def __init__(self, label: str, *, quiet: bool = False, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.width = width
        self.start = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        elapsed = time.monotonic() - self.start
        filled = int(self.width * done / max(total, 1))
        eta = elapsed / done * (total - done) if done else 0.0
        line = f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}  {elapsed:5.1f}s  ETA {eta:5.1f}s"
        end = "\n" if done >= total else ""
        self.stream.write(line + end)
        self.stream.flush()
