"""The engine's ``progress`` job kind: parameters checked on submission, the series made in a worker process."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import MedSynthError
from ..jobs.params import ProgressParams
from .growth import GrowthParams
from .series import ProgressRequest, run_progress

__all__ = ["prepare_progress", "run_progress_job", "request_from"]


def request_from(params: dict[str, Any]) -> ProgressRequest:
    """The ``ProgressRequest`` for stored job parameters (named as the command's options)."""
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
    )


def prepare_progress(raw: dict[str, Any], job_dir: Path, policy: Any) -> tuple[dict[str, Any], Path]:
    """Check the submission (paths under the engine's folders, values in range); refuse in one sentence."""
    params = ProgressParams.model_validate(raw)
    case = policy.check(params.case, "case")
    if not case.is_dir():
        raise MedSynthError(f"The case folder {case} does not exist; give a BraTS-style case folder this engine may read.")
    out = policy.check(params.out, "out") if params.out else job_dir / "output"
    if out == case or out.is_relative_to(case):
        raise MedSynthError(f"The out folder {out} is inside the case folder; choose a new or empty folder elsewhere.")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise MedSynthError(f"{out} is not empty; choose a new or empty out folder (nothing is overwritten).")
    stored = params.model_dump()
    stored.update(case=str(case), out=str(out))
    request_from(stored).validate()
    return stored, out


def run_progress_job(params: dict[str, Any], progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
    out = run_progress(request_from(params), progress=progress)
    return {"output_dir": str(out), "written": sorted(str(p) for p in out.rglob("*.nii.gz"))}
