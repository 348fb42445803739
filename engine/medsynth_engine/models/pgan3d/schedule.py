"""Which stage (resolution) and fade-in ``alpha`` a training step is at; a pure function of the step.

The steps are split into equal phases: the first stage trains alone, then each later stage fades in
(alpha 0 -> 1) and then trains stable. Starting from a trained model (``start_stage`` > 0) skips the
stages it already has. Because it depends on the step only, a resumed run lands in the same place.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Schedule"]


@dataclass(frozen=True)
class Schedule:
    total_steps: int
    stages: int
    start_stage: int = 0

    @property
    def phases(self) -> int:
        return 2 * (self.stages - self.start_stage) - 1

    def boundary(self, phase: int) -> int:
        """First step of ``phase``; phases differ in length by at most one step."""
        return phase * self.total_steps // self.phases

    def at(self, step: int) -> tuple[int, float]:
        """(stage, alpha) at ``step`` (0-based)."""
        phase = max(k for k in range(self.phases) if self.boundary(k) <= step)
        stage = self.start_stage + (phase + 1) // 2
        if phase % 2 == 1:
            start, stop = self.boundary(phase), self.boundary(phase + 1)
            return stage, min(max((step - start) / max(stop - start, 1), 0.0), 1.0)
        return stage, 1.0
