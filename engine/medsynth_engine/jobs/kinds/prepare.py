"""``prepare`` jobs: ``medsynth prepare`` (DICOM studies or raw NIfTI -> BraTS-ready cases) in a worker process.

Every path must lie in a folder the engine may use; the key file, like the command's, must lie outside the output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ..schema import DeviceName, JobParams, PathText
from ..spec import Conflict, JobKind, Missing, PrepareContext, Prepared, RunContext, request_fields

__all__ = ["PrepareParams", "KIND"]


class PrepareParams(JobParams):
    """``medsynth prepare``'s options; ``out`` defaults to the job's own folder."""

    input: PathText
    out: PathText | None = None
    atlas: Literal["mni152", "none"] = "mni152"
    skull_strip: Literal["auto", "model", "atlas", "none"] = "auto"
    n4: bool = False
    sequences: PathText | None = None
    keep_key: PathText | None = None
    spacing: float = Field(1.0, ge=0.5, le=4.0)
    device: DeviceName | None = None


def prepare(params: PrepareParams, ctx: PrepareContext) -> Prepared:
    source = ctx.policy.check(params.input, "input")
    if not source.is_dir():
        raise Missing(f"The input folder {source} does not exist; give a folder of DICOM or NIfTI files this engine may read.")
    out = ctx.path(params.out, "out") or ctx.job_dir / "output"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Conflict(f"{out} is not empty; choose a new or empty out folder (nothing is overwritten).")
    stored = params.model_dump()
    stored.update(input=str(source), out=str(out), device=ctx.device(params.device))
    for name in ("sequences", "keep_key"):
        if stored[name]:
            stored[name] = str(ctx.policy.check(stored[name], name.replace("_", "-")))
    if stored["keep_key"] and Path(stored["keep_key"]).is_relative_to(out):
        raise Conflict(f"The key file {stored['keep_key']} is inside the output folder; keep it elsewhere, for the hospital only.")
    return Prepared(stored, out)


def run(params: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    from ...prepare import PrepareRequest
    from ...prepare import prepare as prepare_studies

    fields = request_fields(params, ("input", "out", "sequences", "keep_key"))
    fields["spacing_mm"] = fields.pop("spacing", 1.0)
    return prepare_studies(PrepareRequest(**fields, log=ctx.log), progress=ctx.fraction_progress())


KIND = JobKind(
    name="prepare",
    params=PrepareParams,
    prepare=prepare,
    run=run,
    summary="Turn DICOM studies or raw NIfTI into BraTS-ready cases (classify, co-register, atlas, skull strip, QC).",
)
