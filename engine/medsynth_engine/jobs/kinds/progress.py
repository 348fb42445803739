"""``progress`` jobs: ``medsynth progress`` (a longitudinal series of one case: tumour growth or atrophy) in a worker."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ...errors import MedSynthError
from ..schema import MAX_SEED, DeviceName, JobParams, PathText
from ..spec import Conflict, JobKind, Missing, PrepareContext, Prepared, RunContext

__all__ = ["ProgressParams", "KIND", "request_from"]


class ProgressParams(JobParams):
    """``medsynth progress``'s options (the ``ProgressRequest`` fields); ``out`` defaults to the job's own folder."""

    case: PathText
    model: Literal["growth", "atrophy"]
    months: list[float] = Field(default_factory=lambda: [0.0, 3.0, 6.0, 12.0], min_length=1, max_length=100)
    out: PathText | None = None
    seed_point: list[float] | None = Field(None, min_length=3, max_length=3)
    d_grey: float = Field(0.13, ge=0.005, le=2.0)
    white_grey_ratio: float = Field(5.0, ge=1.0, le=100.0)
    rho: float = Field(0.012, ge=0.001, le=0.2)
    mass_effect: float = Field(0.5, ge=0.0, le=1.0)
    profile: Literal["ageing", "alzheimer"] = "alzheimer"
    rate: dict[str, float] = Field(default_factory=dict)
    margin_mm: float = Field(8.0, ge=1.0, le=50.0)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    renderer: Literal["auto", "contrast", "inpaint"] = "auto"
    tumour_model: str = Field("ldm3d-phantom", min_length=1, max_length=4096)
    steps: int | None = Field(None, ge=1, le=1000)
    device: DeviceName | None = None


def request_from(params: dict[str, Any]):
    """The ``ProgressRequest`` for stored job parameters (named as the command's options)."""
    from ...progression.growth import GrowthParams
    from ...progression.series import ProgressRequest

    return ProgressRequest(
        case=Path(params["case"]),
        model=params["model"],
        months=[float(m) for m in params["months"]],
        out=Path(params["out"]),
        growth=GrowthParams(
            d_grey_mm2_per_day=params["d_grey"], white_grey_ratio=params["white_grey_ratio"], rho_per_day=params["rho"],
            mass_effect=params["mass_effect"], seed_point_mm=params.get("seed_point"),
        ),
        profile=params["profile"],
        rates=dict(params.get("rate") or {}),
        margin_mm=params["margin_mm"],
        seed=params["seed"],
        renderer=params.get("renderer", "auto"),
        tumour_model=params.get("tumour_model", "ldm3d-phantom"),
        steps=params.get("steps"),
        device=params.get("device"),
    )


def prepare(params: ProgressParams, ctx: PrepareContext) -> Prepared:
    case = ctx.policy.check(params.case, "case")
    if not case.is_dir():
        raise Missing(f"The case folder {case} does not exist; give a BraTS-style case folder this engine may read.")
    out = ctx.path(params.out, "out") or ctx.job_dir / "output"
    if out == case or out.is_relative_to(case):
        raise Conflict(f"The out folder {out} is inside the case folder; choose a new or empty folder elsewhere.")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise Conflict(f"{out} is not empty; choose a new or empty out folder (nothing is overwritten).")
    stored = params.model_dump()
    stored.update(case=str(case), out=str(out), tumour_model=ctx.model_ref(params.tumour_model), device=ctx.device(params.device))
    try:
        request_from(stored).validate()
    except MedSynthError as exc:
        raise Conflict(str(exc)) from None
    return Prepared(stored, out)


def run(params: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    from ...progression.series import run_progress

    out = run_progress(request_from(params), progress=ctx.fraction_progress())
    return {"output_dir": str(out), "written": sorted(str(p) for p in out.rglob("*.nii.gz"))}


KIND = JobKind(
    name="progress",
    params=ProgressParams,
    prepare=prepare,
    run=run,
    summary="A longitudinal series of one case: tumour growth (reaction-diffusion) or atrophy, months apart.",
)
