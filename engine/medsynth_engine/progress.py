"""Progress of long runs: a bar on stderr with rate and ETA, the same numbers for engine jobs, and a watch on a
set's journal that counts the cases every worker of a multi-process run has finished."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["ProgressBar", "Throughput", "JournalWatch", "describe"]


class Throughput:
    """Cases done, rate and ETA since ``start``; cases that were already done (a resumed run) do not count as speed."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.baseline = 0

    def __call__(self, done: int, total: int) -> dict[str, float]:
        """``elapsed_s``, ``per_hour`` (0 until a case is made) and ``eta_s`` (None until then) after ``done`` of ``total``."""
        elapsed = time.monotonic() - self.start
        made = done - self.baseline
        rate = made / elapsed if made > 0 and elapsed > 0 else 0.0
        eta = (total - done) / rate if rate else None
        return {"elapsed_s": round(elapsed, 3), "per_hour": round(rate * 3600, 1), "eta_s": None if eta is None else round(eta, 1)}

    def started_from(self, kept: int) -> None:
        """The run kept ``kept`` finished cases: they say nothing about its speed."""
        self.baseline = kept


def describe(done: int, total: int, numbers: dict[str, float]) -> str:
    """``3/8 cases, 900 cases/h, ETA 20 s``: the words the bar and an engine job's message share."""
    rate = f", {numbers['per_hour']:,.0f} cases/h" if numbers["per_hour"] else ""
    eta = f", ETA {_duration(numbers['eta_s'])}" if numbers["eta_s"] is not None and done < total else ""
    return f"{done}/{total} cases{rate}{eta}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class ProgressBar:
    """``progress(done, total)`` as one updating line on stderr: bar, count, elapsed time, rate and ETA."""

    def __init__(self, label: str, *, quiet: bool = False, stream: TextIO | None = None, width: int = 30, header: str = "") -> None:
        self.label = label
        self.header = header  # a line said once, above the bar, when the run is under way (e.g. its device)
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.width = width
        self.throughput = Throughput()
        self.open_line = False

    def __call__(self, done: int, total: int) -> None:
        if self.quiet:
            return
        if self.header:
            self.stream.write(self.header + "\n")
            self.header = ""
        numbers = self.throughput(done, total)
        filled = int(self.width * done / max(total, 1))
        rate = f"  {numbers['per_hour']:,.0f}/h" if numbers["per_hour"] else ""
        eta = numbers["eta_s"] if numbers["eta_s"] is not None else 0.0
        line = f"\r{self.label} [{'#' * filled}{'.' * (self.width - filled)}] {done}/{total}  {numbers['elapsed_s']:5.1f}s{rate}  ETA {eta:5.1f}s"
        end = "\n" if done >= total else ""
        self.stream.write(line + end)
        self.stream.flush()
        self.open_line = not end

    def end_line(self) -> None:
        """Finish a bar left mid-line, so that a message printed next starts on its own line."""
        if self.open_line:
            self.stream.write("\n")
            self.open_line = False


class JournalWatch:
    """Calls ``progress(done, total)`` whenever ``count()`` (finished cases of all workers) changes, from a thread.

    Use as a context manager around a multi-process run; the count is read once more on leaving."""

    def __init__(self, count: Callable[[], int], total: int, progress: Callable[[int, int], None], interval: float = 0.5) -> None:
        self.count, self.total, self.progress, self.interval = count, total, progress, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="medsynth-progress", daemon=True)
        self._last = -1

    def __enter__(self) -> JournalWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.poll()

    def poll(self) -> None:
        """Report the count if it grew (a published set's journal is gone: that is no step back)."""
        done = self.count()
        if done > self._last:
            self._last = done
            self.progress(done, self.total)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()
