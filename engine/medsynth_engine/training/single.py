"""What the single-network trainers share (the channel models' and l2i3d's): the EMA copy of the network and the
step bookkeeping that ``loop.run_steps`` asks of a run. pgan3d, ldm3d and dcgan2d count steps per stage and keep
their own."""

from __future__ import annotations

from typing import Any

import torch

from .losslog import append_loss

__all__ = ["StepBookkeeping", "update_ema"]


def update_ema(ema: torch.nn.Module, live: torch.nn.Module, steps_done: int, decay: float, buffers: bool = False) -> None:
    """Move ``ema``'s weights towards ``live``'s, with a warm-up ((1 + step) / (10 + step) while that is smaller than
    ``decay``) so that short runs are not dominated by the random initialisation; ``buffers`` copies batch-norm
    statistics as they are (an EMA network never trains, so it would keep its initial ones)."""
    d = min(decay, (1.0 + steps_done) / (10.0 + steps_done))
    with torch.no_grad():
        for average, current in zip(ema.parameters(), live.parameters(), strict=True):
            average.lerp_(current, 1.0 - d)
        if buffers:
            for average, current in zip(ema.buffers(), live.buffers(), strict=True):
                average.copy_(current)


class StepBookkeeping:
    """The members of a ``SteppedRun`` that only count steps. The run sets ``trainer`` (with ``steps_done``),
    ``request`` (with ``steps``), ``out`` and ``progress``, and names its stage in ``stage_name``."""

    trainer: Any
    request: Any
    out: Any
    progress: Any

    def stage_name(self) -> str:
        raise NotImplementedError

    @property
    def step(self) -> int:
        return self.trainer.steps_done

    @property
    def total(self) -> int:
        return self.request.steps

    def log(self, losses: dict[str, float]) -> None:
        append_loss(self.out, {"step": self.step, **losses})

    def step_text(self) -> str:
        return f"step {self.step}/{self.total}"

    def stop_text(self) -> str:
        return f"step {self.step}"

    def report(self, extra: dict[str, Any]) -> None:
        if self.progress:
            step = self.trainer.steps_done if hasattr(self, "trainer") else 0  # before the trainer exists: loading
            self.progress({"step": step, "total": self.request.steps, "stage": self.stage_name(), **extra})
