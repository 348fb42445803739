"""``medsynth finetune --model dcgan2d`` (a new model) or a dcgan2d model folder (continue it): the training entry."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import torch

from ...device import select_device
from ...errors import MedSynthError
from ...training.checkpoint import read_state
from ...training.finetune import FinetuneRequest, ProgressCallback, StopCallback, apply_resume, check_out
from ...training.loop import run_steps
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
    if request.nproc > 1:
        raise MedSynthError("dcgan2d trains in one process; leave out --nproc (a 2D model trains fast enough on one device).")
    if check_out(request):
        state = read_state(request.out) or {}
        request = apply_resume(request, state, fixed_options=tuple(asdict(options)))
        options = DCGANOptions(**{k: state["request"].get(k, v) for k, v in asdict(options).items()})
    else:
        request.resume = False
    request.options = asdict(options)
    device = select_device(request.device)
    try:
        run = DCGANRun(request, options, device, progress)
        run_steps(run, request.log_every, request.checkpoint_every, should_stop)
    except torch.OutOfMemoryError:
        raise MedSynthError(f"Out of {device.type} memory at --batch-size {request.batch_size}; lower it or --width.") from None
    return request.out
