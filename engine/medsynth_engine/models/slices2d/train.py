"""The training entry both 2D families share: new model or continue, resume, one process, out-of-memory as a sentence."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from ...device import select_device
from ...errors import MedSynthError
from ...training.checkpoint import read_state
from ...training.finetune import FinetuneRequest, ProgressCallback, StopCallback, apply_resume, check_out
from ...training.loop import run_steps
from .run import SliceGANRun

__all__ = ["train_slices"]


def train_slices(
    run_class: type[SliceGANRun],
    request: FinetuneRequest,
    options: Any,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Path:
    """Train or continue a model of ``run_class``'s family; the contract of ``training.finetune.run_finetune``."""
    family = run_class.family
    if request.nproc > 1:
        raise MedSynthError(f"{family} trains in one process; leave out --nproc (a 2D model trains fast enough on one device).")
    if check_out(request):
        state = read_state(request.out) or {}
        request = apply_resume(request, state, fixed_options=tuple(asdict(options)))
        options = type(options)(**{k: state["request"].get(k, v) for k, v in asdict(options).items()})
    else:
        request.resume = False
    request.options = asdict(options)
    device = select_device(request.device)
    try:
        run = run_class(request, options, device, progress)
        run_steps(run, request.log_every, request.checkpoint_every, should_stop)
    except torch.OutOfMemoryError:
        raise MedSynthError(f"Out of {device.type} memory at --batch-size {request.batch_size}; lower it or --width.") from None
    return request.out
