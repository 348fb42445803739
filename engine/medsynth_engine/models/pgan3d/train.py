"""``medsynth finetune --model pgan3d`` (new model), ``pgan3d-phantom`` or a pgan3d folder: the GAN's training run.

One process, ``--nproc K`` processes, or a torchrun launch (every process runs ``train``). Rank 0 owns the
output folder: ``model.json`` + ``model.safetensors`` (EMA generator and critic), ``checkpoint/``,
``loss.jsonl`` and ``samples/mosaic_step<N>.png``.
"""

from __future__ import annotations

import functools
import os
from dataclasses import asdict
from pathlib import Path

import torch

from ...device import select_device
from ...errors import MedSynthError
from ...training.checkpoint import read_state
from ...training.distributed import DistContext, broadcast_flag, launch
from ...training.finetune import FinetuneRequest, ProgressCallback, StopCallback, apply_resume, check_out
from ...training.loop import run_steps
from .options import PGANOptions
from .run import TrainingRun

__all__ = ["train"]


def train(
    request: FinetuneRequest,
    options: PGANOptions,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Path:
    """Train or continue a pgan3d model; the contract of ``training.finetune.run_finetune``."""
    if check_out(request):
        state = read_state(request.out) or {}
        request = apply_resume(request, state, fixed_options=tuple(asdict(options)))
        options = PGANOptions(**{k: state["request"].get(k, v) for k, v in asdict(options).items()})
    else:
        request.resume = False
    request.options = asdict(options)
    step = functools.partial(_train, options=options)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # started by torchrun: every process runs this function
        return step(request, DistContext.from_env(select_device(request.device)), progress, should_stop)
    if request.nproc > 1:
        return launch(request, step, progress, should_stop)
    return step(request, DistContext.single(select_device(request.device)), progress, should_stop)


def _train(
    request: FinetuneRequest,
    context: DistContext,
    progress: ProgressCallback | None,
    should_stop: StopCallback | None,
    *,
    options: PGANOptions,
) -> Path:
    try:
        run = TrainingRun(request, options, context, progress)
        asked = should_stop if context.rank == 0 else None  # rank 0 decides; broadcast_flag tells the others
        run_steps(run, request.log_every, request.checkpoint_every, asked, agree=lambda flag: broadcast_flag(flag, context))
        return request.out
    except torch.OutOfMemoryError:
        raise MedSynthError(
            f"Out of {context.device.type} memory at --batch-size {request.batch_size}; lower it, or add --amp or --grad-checkpoint."
        ) from None
    finally:
        context.close()
