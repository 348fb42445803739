"""``finetune`` jobs: ``medsynth finetune`` in a worker process, one at a time per device, resumable.

Cancel and shutdown give the trainer time to write a checkpoint; ``POST /jobs/{id}/resume`` queues the job
again from it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, create_model

from ...errors import MedSynthError
from ...registry import ModelRegistry, default_registry
from ...training.request import family_options
from ..inputs import check_headers, nifti_files
from ..schema import MAX_SEED, DeviceName, JobParams, OptionalChannelList, PathText
from ..spec import Conflict, JobKind, JobStopped, Missing, PrepareContext, Prepared, RunContext, request_fields

__all__ = ["FinetuneParams", "KIND", "finetune_fields", "finetune_params_model", "has_checkpoint"]


class SharedFinetuneParams(JobParams):
    """``medsynth finetune``'s shared options (the ``FinetuneRequest`` fields); unset ones take its defaults."""

    model: str = Field(min_length=1, max_length=4096)
    data: PathText
    out: PathText | None = None
    channels: OptionalChannelList = None
    resolution: Literal[8, 16, 32, 64, 128, 256, 512, 1024] | None = None
    steps: int | None = Field(None, ge=1, le=10_000_000)
    batch_size: int | None = Field(None, ge=1, le=4096, description="A multiple of nproc.")
    resume: bool = False
    nproc: int | None = Field(None, ge=1, le=64)
    skip_bad: bool | None = None
    device: DeviceName | None = None
    checkpoint_every: int | None = Field(None, ge=1, le=10_000_000)
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    spacing: float | None = Field(None, ge=0.25, le=20)
    width: int | None = Field(None, ge=1, le=4096)
    amp: bool | None = None
    log_every: int | None = Field(None, ge=1, le=10_000_000)
    description: str | None = Field(None, max_length=4000)
    licence: str | None = Field(None, max_length=1000)


def finetune_params_model(registry: ModelRegistry | None = None) -> type[JobParams]:
    """The finetune job's params: the shared options plus every installed family's own, derived from its trainer's
    options dataclass (a new family's option appears here without touching this file)."""
    extra: dict[str, Any] = {}
    for spec in family_options(registry):
        bounds = {k: v for k, v in (("ge", spec.minimum), ("le", spec.maximum)) if v is not None}
        kind: Any = Literal[tuple(spec.choices)] if spec.choices else spec.type
        extra[spec.name] = (kind | None, Field(None, description=f"{', '.join(spec.families)}: {spec.help}", **bounds))
    return create_model("FinetuneParams", __base__=SharedFinetuneParams, __doc__=SharedFinetuneParams.__doc__, **extra)


FinetuneParams = finetune_params_model()


def finetune_fields(params: dict[str, Any]) -> dict[str, Any]:
    """FinetuneRequest keyword arguments from job parameters: unset ones left to its defaults, paths as Path."""
    return request_fields(params, ("data", "out"))


def has_checkpoint(job_dir: Path, out: Path) -> bool:
    """Whether ``out`` holds a checkpoint; a job-owned folder without one is cleared so the run can start again."""
    from ...training.checkpoint import read_state

    try:
        if read_state(out) is not None:
            return True
    except MedSynthError:
        return True  # a damaged checkpoint: resuming reports it as the job's error
    if out.is_dir() and out.resolve().is_relative_to(job_dir.resolve()):
        shutil.rmtree(out, ignore_errors=True)
    return False


def prepare(params: FinetuneParams, ctx: PrepareContext) -> Prepared:
    try:
        from ...training.finetune import family_and_options
        from ...training.request import FinetuneRequest
    except ImportError:
        raise Conflict("Fine-tuning is not available in this engine (medsynth_engine.training is not installed).") from None
    # A name (pgan3d, pgan3d-phantom...) is the fine-tune's to judge; a folder must be one this engine may read.
    model = str(ctx.policy.check(params.model, "model")) if Path(os.path.expanduser(params.model)).is_absolute() else params.model
    data = ctx.policy.check(params.data, "data")
    if not data.is_dir():
        raise Missing(f"The training data folder {data} does not exist.")
    if not params.skip_bad:  # with skip_bad, a broken case is left out and reported instead
        check_headers(nifti_files(data))
    out = ctx.path(params.out, "out") or ctx.job_dir / "model"
    if params.resume and not has_checkpoint(ctx.job_dir, out):
        raise Conflict(f"{out} holds no checkpoint to resume; submit the fine-tune without resume.")
    if not params.resume and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Conflict(f"{out} is not empty; choose a new folder for the model, or resume the run in it.")
    stored = params.model_dump()
    stored.update(model=model, data=str(data), out=str(out), device=ctx.device(params.device))
    try:
        request = FinetuneRequest.make(**finetune_fields(stored))
        request.validate()
        family_and_options(request, default_registry())  # the model's family and its own options, from cards only
    except (TypeError, ValueError) as exc:
        raise MedSynthError(f"The fine-tune parameters are not valid: {exc}.") from None
    return Prepared(stored, out)


def run(params: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    from ...training.finetune import FinetuneRequest, run_finetune

    request = FinetuneRequest.make(**finetune_fields(params))
    if ctx.stopped():  # cancelled while starting up: nothing to checkpoint yet
        raise JobStopped
    folder = run_finetune(request, progress=ctx.progress, should_stop=ctx.stopped)
    return {"output_dir": str(folder), "stopped": ctx.stopped()}


def resume(params: dict[str, Any], job_dir: Path) -> dict[str, Any]:
    """The stopped fine-tune's params, resuming from its checkpoint if it wrote one (else starting again)."""
    return {**params, "resume": has_checkpoint(job_dir, Path(params["out"]))}


KIND = JobKind(
    name="finetune",
    params=FinetuneParams,
    prepare=prepare,
    run=run,
    summary="Fine-tune a model on a BraTS-style folder; cancel checkpoints, resume continues from it.",
    lane_by="device",
    resume=resume,
)
