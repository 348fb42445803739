"""``run_finetune``: the one entry to training. It finds the family of ``--model`` and runs that family's trainer.

Every family's trainer keeps the same contract: the output folder is a usable model from the first checkpoint
on (``model.json`` + ``model.safetensors``), ``checkpoint/`` resumes exactly, ``loss.jsonl`` logs the losses,
progress goes to a callback, and a stop request ends the run at a checkpoint without raising.

The request has the options every family shares; a family's own options (``--stage``, ``--latent-downsample``,
...) travel in ``options`` and are checked against the family's options dataclass (``contract.TrainerSpec``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any

from ..contract import ModelFamily, resolve_ref
from ..errors import MedSynthError
from ..registry import ModelRegistry, default_registry
from .checkpoint import CHECKPOINT_DIR, read_state
from .losslog import LOSS_LOG
from .request import DEFAULT_STEPS, FinetuneRequest, family_options

__all__ = [
    "FinetuneRequest", "run_finetune", "family_and_options", "ProgressCallback", "StopCallback", "family_options", "check_out", "apply_resume",
    "AlreadyTrained", "resume_steps",
]

ProgressCallback = Callable[[dict], None]
StopCallback = Callable[[], bool]
#: Settings a resumed run takes from its checkpoint, whatever the command line says (with the family's options).
RESUME_FIXED = ("model", "data", "channels", "resolution", "batch_size", "seed", "spacing", "width", "amp")


class AlreadyTrained(Exception):  # noqa: N818 (an outcome, not an error: run_finetune returns the folder)
    """``--resume --steps N`` where the run has done N steps or more: nothing to train (exit 0, one sentence)."""


def resume_steps(request: FinetuneRequest, state: dict[str, Any]) -> tuple[int, int]:
    """(steps, schedule_steps) of a resumed run: the checkpoint's, or ``request.steps`` when that extends the run.

    Raises ``AlreadyTrained`` when the run has done every step asked for.
    """
    saved = state["request"]
    done = int(state["step"])
    planned = int(saved.get("schedule_steps") or saved["steps"])
    steps = int(saved["steps"]) if request.steps is None else int(request.steps)
    if done >= steps:
        asked = f"--steps {request.steps} asks" if request.steps is not None else "it was started with"
        raise AlreadyTrained(
            f"The run in {request.out} has already trained {done} step{'' if done == 1 else 's'}, as many as {asked}; nothing to train "
            f"(a larger --steps with --resume extends it)."
        )
    return steps, planned


def check_out(request: FinetuneRequest) -> bool:
    """Whether the run resumes from a checkpoint; refuses a folder that holds something else. A run that starts
    afresh gets ``DEFAULT_STEPS`` if it has no step count."""
    out = request.out
    if request.resume:
        if read_state(out) is not None:
            return True
        if out.is_dir() and (out / "model.json").exists():
            raise MedSynthError(f"{out} holds a model but no checkpoint to resume; fine-tune it with --model {out} instead.")
        if out.is_dir():  # killed before its first checkpoint: start again from step 0
            for name in (LOSS_LOG, f"{CHECKPOINT_DIR}/data_report.json"):
                (out / name).unlink(missing_ok=True)
            request.steps = request.steps or DEFAULT_STEPS
            return False
    request.steps = request.steps or DEFAULT_STEPS
    if int(os.environ.get("RANK", "0")) != 0:
        return False  # under torchrun, rank 0 alone owns the output folder
    if out.exists() and (not out.is_dir() or any(p for p in out.iterdir() if p.name != CHECKPOINT_DIR or any(p.iterdir()))):
        raise MedSynthError(f"{out} is not empty; choose a new folder, or add --resume to continue the run in it.")
    if not out.parent.is_dir():
        raise MedSynthError(f"The folder {out.parent} does not exist; create it or choose another --out.")
    return False


def apply_resume(request: FinetuneRequest, state: dict[str, Any], fixed_options: tuple[str, ...] = ()) -> FinetuneRequest:
    """The request with the settings an exact resume must keep taken from the checkpoint's request, and its step
    count extended where ``request.steps`` asks for more (``resume_steps``)."""
    saved = state["request"]
    values = {f.name: getattr(request, f.name) for f in fields(request)}
    values.update({k: saved[k] for k in RESUME_FIXED if k in saved})
    values["steps"], values["schedule_steps"] = resume_steps(request, state)
    values["channels"] = tuple(saved["channels"]) if saved.get("channels") else None
    values["options"] = {**request.options, **{k: saved[k] for k in fixed_options if k in saved}}
    resumed = FinetuneRequest(**values)
    resumed.validate()
    return resumed


def family_and_options(request: FinetuneRequest, registry: ModelRegistry) -> tuple[ModelFamily, Any]:
    """The family that trains ``request.model`` and its options dataclass, each option checked (one sentence if not)."""
    family = registry.family_for(str(request.model))
    if family.trainer is None:
        raise MedSynthError(f"The '{family.name}' model family does not train; choose one that does.")
    known = {spec.name for spec in family.options()}
    foreign = sorted(name for name, value in request.options.items() if name not in known and value is not None)
    if foreign:
        owners = {spec.name: spec.families for spec in family_options(registry)}
        name = foreign[0]
        flag = "--" + name.replace("_", "-")
        if name in owners:
            raise MedSynthError(f"{flag} is for {', '.join(owners[name])} models; {request.model} is a {family.name} model.")
        raise MedSynthError(f"Unknown training option {flag}.")
    options = family.trainer.parse(request.options, family.name)
    request.options = {k: v for k, v in request.options.items() if v is not None}
    return family, options


def run_finetune(
    request: FinetuneRequest,
    *,
    progress: ProgressCallback | None = None,
    should_stop: StopCallback | None = None,
    registry: ModelRegistry | None = None,
) -> Path:
    """Train until ``request.steps`` or until ``should_stop()``; returns the model folder (never raises on stop)."""
    request.validate()
    family, options = family_and_options(request, registry or default_registry())
    try:
        return resolve_ref(family.trainer.train)(request, options, progress=progress, should_stop=should_stop)
    except AlreadyTrained as done:
        if progress:
            progress({"message": str(done)})
        return Path(request.out)
