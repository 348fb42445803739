"""``medsynth finetune --model dcgan2d`` (a new model) or a dcgan2d model folder (continue it): the training entry."""

from __future__ import annotations

from pathlib import Path

from ...training.finetune import FinetuneRequest, ProgressCallback, StopCallback
from ..slices2d.train import train_slices
from .options import DCGANOptions
from .run import DCGANRun

__all__ = ["train"]


def train(
    request: FinetuneRequest,
    options: DCGANOptions,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Path:
    """Train or continue a dcgan2d model; the contract of ``training.finetune.run_finetune``."""
    return train_slices(DCGANRun, request, options, progress, should_stop)
