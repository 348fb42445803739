"""``run_finetune``: train or fine-tune pgan3d on a folder of scans, resumably, on one or several processes.

The output folder is a usable model from the first checkpoint on: ``model.json`` + ``model.safetensors``
(EMA generator and critic), ``checkpoint/`` (exact resume state), ``loss.jsonl`` and
``samples/mosaic_step<N>.png``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from MedSynthLib.conventions import parse_channels

from ..device import select_device
from ..errors import MedSynthError
from .checkpoint import CHECKPOINT_DIR, read_state
from .distributed import DistContext, broadcast_flag, launch
from .families import family_module, family_of
from .loop import run_steps
from .run import LOSS_LOG, TrainingRun

__all__ = ["FinetuneRequest", "run_finetune", "ProgressCallback", "StopCallback"]

ProgressCallback = Callable[[dict], None]
StopCallback = Callable[[], bool]
#: Settings a resumed run takes from its checkpoint, whatever the command line says.
RESUME_FIXED = ("model", "data", "channels", "resolution", "steps", "batch_size", "freeze_stages", "seed", "spacing", "width", "augment", "amp", "grad_checkpoint")


@dataclass
class FinetuneRequest:
    """Everything ``medsynth finetune`` takes (field names are the option names).

    Args:
        model: ``pgan3d`` (new model), ``pgan3d-phantom`` or a pgan3d model folder to continue from.
        data: BraTS-style folder, nnU-Net v2 raw dataset or plain folder of NIfTI files.
        out: the model folder to write (new or empty, or the folder of a run to ``resume``).
        channels: channels to learn; default: the base model's, else every channel all cases have.
        resolution: cube side (power of two); default 64 for a new model, else the base's.
        steps: training steps (one critic and one generator update each) over all stages.
        batch_size: global batch, split over ``nproc`` processes.
        checkpoint_every: steps between checkpoints (and mosaics, diversity figures).
        freeze_stages: keep the base generator's first N stages fixed (transfer on small data).
        spacing: voxel size in mm; default: the base's field of view (192 mm for a new model).
        width: network width at 4^3 (new models only); default 128.
        augment: DiffAugment of real and generated volumes for the critic.
        amp: bf16 autocast.
        grad_checkpoint: recompute the generator's blocks in the backward pass (less memory, more time).
        description: training-data description for the card (default: counts and layout, no file names).
        licence: licence of the weights for the card (default: the data owner's terms).
        stage: which stage of a multi-stage family to train (ldm3d: autoencoder or diffusion; mr2ct: adversarial).
        latent_downsample: ldm3d, new models only: how many times smaller the latent grid's side is than the
            volume's (2, 4 or 8); default 4 (2 below 32^3). Finer latents keep small structures such as an
            enhancing rim, at a higher cost per diffusion step.
    """

    model: str
    data: Path
    out: Path
    channels: tuple[str, ...] | None = None
    resolution: int | None = None
    steps: int = 1000
    batch_size: int = 4
    resume: bool = False
    nproc: int = 1
    skip_bad: bool = False
    device: str | None = None
    checkpoint_every: int = 100
    freeze_stages: int = 0
    seed: int = 0
    spacing: float | None = None
    width: int | None = None
    augment: bool = True
    amp: bool = False
    grad_checkpoint: bool = False
    log_every: int = 10
    description: str | None = None
    licence: str | None = None
    stage: str | None = None
    latent_downsample: int | None = None

    def validate(self) -> None:
        self.data, self.out = Path(self.data), Path(self.out)
        if self.channels is not None:
            try:
                self.channels = parse_channels(self.channels)
            except ValueError as exc:
                raise MedSynthError(str(exc)) from None
        for name in ("steps", "batch_size", "nproc", "checkpoint_every", "log_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise MedSynthError(f"--{name.replace('_', '-')} must be a positive whole number, not {value}.")
        if self.batch_size % self.nproc:
            raise MedSynthError(f"--batch-size {self.batch_size} must be a multiple of --nproc {self.nproc}.")
        if self.freeze_stages < 0 or not 0 <= self.seed < 2**62:
            raise MedSynthError("--freeze-stages and --seed must be non-negative.")
        if self.resolution is not None and (self.resolution < 8 or self.resolution & (self.resolution - 1)):
            raise MedSynthError(f"--resolution must be a power of two of at least 8, not {self.resolution}.")
        if self.latent_downsample is not None and self.latent_downsample not in (2, 4, 8):
            raise MedSynthError(f"--latent-downsample must be 2, 4 or 8, not {self.latent_downsample}.")
        if self.spacing is not None and not 0.25 <= self.spacing <= 20:
            raise MedSynthError(f"--spacing must be 0.25 to 20 mm, not {self.spacing}.")

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(data=str(self.data), out=str(self.out), channels=list(self.channels) if self.channels else None)
        return data


def _apply_resume(request: FinetuneRequest, state: dict[str, Any]) -> FinetuneRequest:
    saved = state["request"]
    values = {f.name: getattr(request, f.name) for f in fields(request)}
    values.update({k: saved[k] for k in RESUME_FIXED if k in saved})
    values["channels"] = tuple(saved["channels"]) if saved.get("channels") else None
    resumed = FinetuneRequest(**values)
    resumed.validate()
    return resumed


def _check_out(request: FinetuneRequest) -> bool:
    """Whether the run resumes from a checkpoint; refuses a folder that holds something else."""
    out = request.out
    if request.resume:
        if read_state(out) is not None:
            return True
        if out.is_dir() and (out / "model.json").exists():
            raise MedSynthError(f"{out} holds a model but no checkpoint to resume; fine-tune it with --model {out} instead.")
        if out.is_dir():  # killed before its first checkpoint: start again from step 0
            for name in (LOSS_LOG, f"{CHECKPOINT_DIR}/data_report.json"):
                (out / name).unlink(missing_ok=True)
            return False
    if int(os.environ.get("RANK", "0")) != 0:
        return False  # under torchrun, rank 0 alone owns the output folder
    if out.exists() and (not out.is_dir() or any(p for p in out.iterdir() if p.name != CHECKPOINT_DIR or any(p.iterdir()))):
        raise MedSynthError(f"{out} is not empty; choose a new folder, or add --resume to continue the run in it.")
    if not out.parent.is_dir():
        raise MedSynthError(f"The folder {out.parent} does not exist; create it or choose another --out.")
    return False


def run_finetune(
    request: FinetuneRequest,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
) -> Path:
    """Train until ``request.steps`` or until ``should_stop()``; returns the model folder (never raises on stop).

    ``request.model`` picks the family (pgan3d, seg, mr2ct, ldm3d: see ``families``); other families train
    through their own module with this same contract.
    """
    request.validate()
    family = family_of(request.model)
    if request.latent_downsample is not None and family != "ldm3d":
        raise MedSynthError(f"--latent-downsample is for latent diffusion (ldm3d) models; {request.model} has no latent grid.")
    if family != "pgan3d":
        return family_module(family).train(request, progress=progress, should_stop=should_stop)
    if request.stage is not None:
        raise MedSynthError(f"--stage is for multi-stage models such as ldm3d; {request.model} trains in one stage.")
    if _check_out(request):
        request = _apply_resume(request, read_state(request.out) or {})
    else:
        request.resume = False
    env_world = int(os.environ.get("WORLD_SIZE", "1"))
    if env_world > 1:  # started by torchrun: every process runs this function
        context = DistContext.from_env(select_device(request.device))
        return _train(request, context, progress, should_stop)
    if request.nproc > 1:
        return launch(request, _train, progress, should_stop)
    return _train(request, DistContext.single(select_device(request.device)), progress, should_stop)


def _train(
    request: FinetuneRequest,
    context: DistContext,
    progress: ProgressCallback | None,
    should_stop: StopCallback | None,
) -> Path:
    try:
        return _loop(request, context, progress, should_stop)
    except torch.OutOfMemoryError:
        raise MedSynthError(
            f"Out of {context.device.type} memory at --batch-size {request.batch_size}; lower it, or add --amp or --grad-checkpoint."
        ) from None
    finally:
        context.close()


def _loop(
    request: FinetuneRequest,
    context: DistContext,
    progress: ProgressCallback | None,
    should_stop: StopCallback | None,
) -> Path:
    run = TrainingRun(request, context, progress)
    asked = should_stop if context.rank == 0 else None  # rank 0 decides; broadcast_flag tells the others
    run_steps(run, request.log_every, request.checkpoint_every, asked, agree=lambda flag: broadcast_flag(flag, context))
    return request.out

