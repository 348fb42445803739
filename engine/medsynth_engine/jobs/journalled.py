"""What the job kinds that write a set through a journal (generate, export) share: how a stopped one is queued
again, and its progress, which says "continued from case N" once a resumed run kept finished cases."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..journal import continued_message
from ..progress import Throughput, describe
from .spec import JobStopped, RunContext

__all__ = ["resume_from_journal", "SetProgress", "RESUMED_MESSAGE"]

RESUMED_MESSAGE = "Queued to continue from its journal."


def resume_from_journal(params: dict[str, Any], job_dir: Path) -> dict[str, Any]:
    """The stopped job's params, continuing its set from the journal (the cases it finished are kept)."""
    return {**params, "resume": True, "discard": False}


class SetProgress:
    """``progress(done, total)`` and ``resumed(kept, total)`` callbacks of a set writer, reporting to the job."""

    def __init__(self, ctx: RunContext, *, timed: bool = False) -> None:
        self.ctx, self.started, self.timed = ctx, time.monotonic(), timed
        self.continued: dict[str, int] = {}
        self.throughput = Throughput()

    def resumed(self, kept: int, total: int) -> None:
        self.continued["continued_from"] = kept + 1
        self.throughput.started_from(kept)
        self.ctx.log(continued_message(kept, total))

    def __call__(self, done: int, total: int) -> None:
        """The job's progress; a timed one (generate) also says the rate and ETA that ``medsynth generate``'s bar shows."""
        note = f" (continued from case {self.continued['continued_from']})" if self.continued else ""
        speed: dict[str, Any] = {}
        if self.timed:
            numbers = self.throughput(done, total)
            speed = {"seconds": numbers["elapsed_s"], "cases_per_hour": numbers["per_hour"], "eta_s": numbers["eta_s"]}
            note += describe(done, total, numbers).removeprefix(f"{done}/{total} cases")
        self.ctx.progress({"step": done, "total": total, **speed, "message": f"case {done}/{total}{note}", **self.continued})
        if self.ctx.stopped():
            raise JobStopped
