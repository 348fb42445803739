"""``add-tumour`` jobs: ``medsynth add-tumour`` (inpaint a drawn tumour into a case) in a worker process."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ..inputs import check_case_files
from ..schema import MAX_SEED, DeviceName, JobParams, PathText
from ..spec import Conflict, JobKind, Missing, PrepareContext, Prepared, RunContext, request_fields

__all__ = ["AddTumourParams", "KIND"]


class AddTumourParams(JobParams):
    """``medsynth add-tumour``'s options (the ``AddTumourRequest`` fields) plus ``outline``.

    ``outline``: the mask is one drawn region (any non-zero voxel), not BraTS codes; the engine turns it into a
    tumour (necrotic core, enhancing rim, oedema) with ``addtumour.structure_from_outline`` before adding it, so the
    Slicer side never needs torch or the engine package. ``out`` defaults to the job's own folder.
    """

    case: PathText
    mask: PathText
    out: PathText | None = None
    model: str = Field("ldm3d-phantom", min_length=1, max_length=4096)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    margin_mm: float = Field(8.0, gt=0, le=50)
    steps: int | None = Field(None, ge=1, le=1000)
    device: DeviceName | None = None
    outline: bool = False


def prepare(params: AddTumourParams, ctx: PrepareContext) -> Prepared:
    case = ctx.policy.check(params.case, "case")
    if not case.is_dir():
        raise Missing(f"The case folder {case} does not exist; give a BraTS-style case folder this engine may read.")
    mask = ctx.input_file(params.mask, "mask")
    from ...addtumour import is_free_output
    from ...data.layouts import find_case_files

    check_case_files(find_case_files(case)[1].values())  # a broken file is a 4xx naming it
    check_case_files([mask])  # the mask may lie on any grid
    out = ctx.path(params.out, "out") or ctx.job_dir / "output"
    if out == case or out.is_relative_to(case):
        raise Conflict(f"The out folder {out} is inside the case folder; choose a new or empty folder elsewhere.")
    if not is_free_output(out):
        raise Conflict(f"{out} is not empty; choose a new or empty out folder (nothing is overwritten).")
    stored = params.model_dump()
    stored.update(case=str(case), mask=str(mask), out=str(out), model=ctx.model_ref(params.model),
                  device=ctx.device(params.device))
    return Prepared(stored, out)


def run(params: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    from ...addtumour import AddTumourRequest, add_tumour
    from ..masks import outline_to_tumour

    fields = request_fields(params, ("case", "mask", "out"))
    if fields.pop("outline", False):
        ctx.log("Turning the drawn outline into a tumour (core, rim, oedema).")
        fields["mask"] = outline_to_tumour(fields["mask"], ctx.job_dir / "tumour-mask.nii.gz")
    return add_tumour(AddTumourRequest(**fields), progress=ctx.fraction_progress())


KIND = JobKind(
    name="add-tumour",
    params=AddTumourParams,
    prepare=prepare,
    run=run,
    summary="Add a drawn tumour to a case (latent-diffusion inpainting); voxels change only near it.",
)
