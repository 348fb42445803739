"""Calls that may wait (engine start-up, every HTTP request, file reads) run here, off the GUI thread.

One worker thread runs the calls in the order they were made, so engine requests never race each other;
their results queue up until the GUI thread calls :meth:`BackgroundCalls.drain` from its timer, and the
``done``/``failed`` callbacks run there, where touching widgets and MRML is safe. Standard library only.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["BackgroundCalls"]


class BackgroundCalls:
    """An ordered queue of calls run on one daemon worker thread; callbacks run on the thread that drains."""

    def __init__(self, name: str = "MedSynth engine calls") -> None:
        self._name = name
        self._todo: queue.Queue = queue.Queue()
        self._done: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self.pending = 0  # calls made and not yet drained (changed on the draining thread only)

    @property
    def busy(self) -> bool:
        return self.pending > 0

    def call(self, fn: Callable[[], Any], done: Callable[[Any], None] | None = None,
             failed: Callable[[BaseException], None] | None = None) -> None:
        """Run ``fn()`` on the worker; later, :meth:`drain` calls ``done(result)`` or ``failed(exception)``."""
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._thread.start()
        self.pending += 1
        self._todo.put((fn, done, failed))

    def drain(self) -> int:
        """Run the callbacks of every finished call (call this on the GUI thread); returns how many finished."""
        count = 0
        while True:
            try:
                outcome, value, done, failed = self._done.get_nowait()
            except queue.Empty:
                return count
            self.pending -= 1
            count += 1
            if outcome == "ok" and done is not None:
                done(value)
            elif outcome == "error":
                if failed is None:
                    raise value
                failed(value)

    def _work(self) -> None:
        while True:
            fn, done, failed = self._todo.get()
            try:
                self._done.put(("ok", fn(), done, failed))
            except Exception as exc:  # handed to the GUI thread, which shows it
                self._done.put(("error", exc, done, failed))
