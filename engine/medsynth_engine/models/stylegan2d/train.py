"""``medsynth finetune --model stylegan2d`` (a new model) or a stylegan2d model folder (continue it): the training entry."""

from __future__ import annotations

from pathlib import Path

from ...training.finetune import FinetuneRequest, ProgressCallback, StopCallback
from ..slices2d.train import train_slices
from .options import StyleGANOptions
from .run import StyleGANRun

__all__ = ["train"]


def train(
    request: FinetuneRequest,
    options: StyleGANOptions,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Path:
    """Train or continue a stylegan2d model; the contract of ``training.finetune.run_finetune``."""
    return train_slices(StyleGANRun, request, options, progress, should_stop)
