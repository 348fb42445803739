"""Progress from a running job to its record: one shape for in-engine and worker runs, written at a bounded rate."""

from __future__ import annotations

import time
from typing import Any

from .store import JobStore

__all__ = ["ProgressReport", "PROGRESS_INTERVAL"]

#: Seconds between progress writes to the store (the last one is always written).
PROGRESS_INTERVAL = 0.25


class ProgressReport:
    """Turns a run's ``progress(info)`` into the job's progress, message and metrics, at most every PROGRESS_INTERVAL.

    ``info`` holds ``fraction`` (0-1) or ``step`` and ``total``, and a ``message``; the whole of it becomes the
    job's ``metrics``. A changed message also goes to the job's log.
    """

    def __init__(self, store: JobStore, job_id: str) -> None:
        self.store = store
        self.job_id = job_id
        self.last = 0.0
        self.pending: dict[str, Any] | None = None
        self.logged = ""

    def __call__(self, info: dict[str, Any]) -> None:
        total = info.get("total") or 0
        if isinstance(info.get("fraction"), int | float):
            fraction = float(info["fraction"])
        else:
            fraction = float(info.get("step", 0)) / total if total else 0.0
        message = info.get("message") or (f"step {info.get('step')}/{total}" if total else "running")
        self.pending = {"progress": max(0.0, min(1.0, fraction)), "message": str(message), "metrics": info}
        if time.monotonic() - self.last >= PROGRESS_INTERVAL:
            self.flush()

    def flush(self) -> None:
        if self.pending is not None:
            self.store.update(self.job_id, **self.pending)
            if self.pending["message"] != self.logged:
                self.logged = self.pending["message"]
                self.store.append_log(self.job_id, [self.logged])
            self.pending = None
            self.last = time.monotonic()
