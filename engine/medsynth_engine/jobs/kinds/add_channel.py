"""``add-channel`` jobs: ``medsynth add-channel`` (a seg or CT channel for a case) in a worker process."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from ..inputs import check_case_files
from ..schema import DeviceName, JobParams, PathText
from ..spec import Conflict, JobKind, Missing, PrepareContext, Prepared, RunContext, request_fields

__all__ = ["AddChannelParams", "KIND"]


class AddChannelParams(JobParams):
    """``medsynth add-channel``'s options (the ``AddChannelRequest`` fields): add ``channel`` to the case ``case``."""

    case: PathText
    channel: Literal["seg", "ct"]
    model: str | None = Field(None, min_length=1, max_length=4096)
    out: PathText | None = None
    replace: bool = False
    device: DeviceName | None = None
    amp: bool | None = None
    brain_mask: PathText | None = None
    no_brain_mask: bool = False
    n4: bool | None = None

    @model_validator(mode="after")
    def _one_mask_choice(self) -> AddChannelParams:
        if self.brain_mask is not None and self.no_brain_mask:
            raise ValueError("give a brain mask or ask for none, not both")
        return self


def prepare(params: AddChannelParams, ctx: PrepareContext) -> Prepared:
    case = ctx.policy.check(params.case, "case")
    if not case.exists():
        raise Missing(f"The case {case} does not exist; give a case folder or a NIfTI file this engine may read.")
    out = ctx.path(params.out, "out")
    if case.is_dir() and not params.replace:  # first: the file it would overwrite says more than the files it reads
        target = (out or case) / f"{case.name}_{params.channel}.nii.gz"
        if target.exists():
            raise Conflict(f"{target} already exists; add the channel with replace, or choose another out folder.")
    from ...data.layouts import find_case_files

    mask = ctx.policy.check(params.brain_mask, "brain_mask") if params.brain_mask is not None else None
    if mask is not None and not mask.is_file():
        raise Missing(f"The brain mask {mask} does not exist.")
    check_case_files([*find_case_files(case)[1].values(), *([mask] if mask else [])])  # a broken file is a 4xx naming it
    model = params.model
    if model is not None and Path(os.path.expanduser(model)).is_absolute():
        model = str(ctx.policy.check(model, "model"))
    stored = params.model_dump()
    stored.update(case=str(case), out=str(out) if out else None, model=model, device=ctx.device(params.device), brain_mask=str(mask) if mask else None)
    return Prepared(stored, out or (case if case.is_dir() else case.parent))


def run(params: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    from ...addchannel import AddChannelRequest, add_channel

    return add_channel(AddChannelRequest(**request_fields(params, ("case", "out", "brain_mask"))), progress=ctx.fraction_progress())


def done_message(result: dict[str, Any]) -> str:
    """The job's message once it succeeded: what the seg channel found ("no tumour found ..."), else "Done."."""
    from ...addchannel import outcome_sentence

    if "tumour_found" not in result:
        return "Done."
    sentence = outcome_sentence(result)
    return sentence[0].upper() + sentence[1:] + "."


KIND = JobKind(
    name="add-channel",
    params=AddChannelParams,
    prepare=prepare,
    run=run,
    summary="Add a segmentation (seg) or CT channel to a case with a channel model.",
    done_message=done_message,
)
