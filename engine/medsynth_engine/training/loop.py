"""The step loop every trainer shares: log, checkpoint, progress, ETA and a clean stop on ``should_stop()``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol

from ..killpoint import killpoint

__all__ = ["SteppedRun", "run_steps"]


class SteppedRun(Protocol):
    """What a training run offers the loop (pgan3d's TrainingRun, ldm3d's LDMRun, the channel models' run)."""

    step: int
    total: int

    def train_step(self) -> dict[str, float]: ...
    def log(self, losses: dict[str, float]) -> None: ...
    def checkpoint(self, losses: dict[str, float]) -> None: ...
    def report(self, extra: dict[str, Any]) -> None: ...
    def step_text(self) -> str: ...  # the progress message, e.g. "step 3/10 at 16^3"
    def stop_text(self) -> str: ...  # where a stop left the run, e.g. "step 3"


def run_steps(
    run: SteppedRun,
    log_every: int,
    checkpoint_every: int,
    should_stop: Callable[[], bool] | None,
    agree: Callable[[bool], bool] = bool,
) -> None:
    """Train until ``run.total`` or a stop; ``agree`` makes every process of a distributed run stop together."""
    started, first = time.monotonic(), run.step
    while run.step < run.total:
        losses = run.train_step()
        killpoint("finetune.step")
        stop = agree(bool(should_stop and should_stop()))
        eta = (time.monotonic() - started) / max(run.step - first, 1) * (run.total - run.step)
        if run.step % log_every == 0 or run.step == run.total:
            run.log(losses)
            killpoint("finetune.logged")
        if run.step % checkpoint_every == 0 or run.step == run.total or stop:
            run.checkpoint(losses)
        run.report({"losses": losses, "eta_s": round(eta, 1), "message": run.step_text()})
        if stop:
            run.report({"message": f"stopped at {run.stop_text()}; resume with --resume", "eta_s": None})
            break
