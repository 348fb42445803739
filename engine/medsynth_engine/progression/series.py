"""``medsynth progress``: a longitudinal series of one case (tumour growth or atrophy), written atomically.

The series goes into a hidden temporary folder beside ``out`` and is renamed into place when every time point
and the manifest are written; an interrupted run leaves nothing. Time point folders are BraTS-style cases named
``<series id>_m<months>`` (a new random id: the input's name, which may identify a patient, is not carried
over). ``manifest.json`` records the model, every parameter and, per time point, the files, the compartment
volumes and the visible front's speed in white and in grey matter (growth) or the prescribed and measured
regional Jacobians (atrophy), and how many voxels changed.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from MedSynthLib.conventions import LABEL_CHANNEL

from .. import __version__
from ..errors import MedSynthError
from ..journal import case_id, new_id_key
from ..nifti_io import write_nifti
from ..setwriter import check_target
from .atrophy import RATES, REGIONS, displacement_field, jacobian, prescribed_change, region_map, warp
from .case import Case, read_case, tissue_classes
from .fieldfile import write_vector_field
from .growth import GrowthParams, grow, labels_at
from .rendering import RENDERERS, Inpainter, choose_renderer

__all__ = ["ProgressRequest", "run_progress", "MODELS", "MAX_MONTHS"]

MODELS = ("growth", "atrophy")
MAX_MONTHS = 120.0


@dataclass
class ProgressRequest:
    """Everything ``medsynth progress`` takes."""

    case: Path
    model: str
    months: list[float]
    out: Path
    growth: GrowthParams = field(default_factory=GrowthParams)
    profile: str = "alzheimer"  # atrophy rates: ageing or alzheimer
    rates: dict[str, float] = field(default_factory=dict)  # per-region overrides, % per year
    margin_mm: float = 8.0
    seed: int = 0
    renderer: str = "auto"  # growth: contrast (phantom cases), inpaint (real scans), auto (by the case)
    tumour_model: str = "ldm3d-phantom"  # growth with inpaint: the mask-conditioned model
    steps: int | None = None  # its sampling steps (None: the model's default)
    device: str | None = None

    def validate(self) -> None:
        if self.model not in MODELS:
            raise MedSynthError(f"Unknown progression model '{self.model}'; use growth or atrophy.")
        if not self.months or any(not 0.0 <= m <= MAX_MONTHS for m in self.months):
            raise MedSynthError(f"The months must be 0 to {MAX_MONTHS:g}, e.g. 0,3,6,12, not {self.months}.")
        if len(set(self.months)) != len(self.months) or list(self.months) != sorted(self.months):
            raise MedSynthError(f"The months must increase with no repeats, not {self.months}.")
        if self.profile not in RATES:
            raise MedSynthError(f"Unknown atrophy profile '{self.profile}'; use {' or '.join(RATES)}.")
        unknown = set(self.rates) - set(RATES[self.profile])
        if unknown:
            raise MedSynthError(f"Unknown atrophy region(s) {', '.join(sorted(unknown))}; use {', '.join(RATES[self.profile])}.")
        if any(not -20.0 <= r <= 50.0 for r in self.rates.values()):
            raise MedSynthError("Atrophy rates must be -20 to 50 % per year.")
        if self.renderer not in RENDERERS:
            raise MedSynthError(f"Unknown renderer '{self.renderer}'; use {', '.join(RENDERERS)}.")
        if self.steps is not None and not 1 <= self.steps <= 1000:
            raise MedSynthError(f"The number of sampling steps must be 1 to 1000, not {self.steps}.")
        if not 1.0 <= self.margin_mm <= 50.0:
            raise MedSynthError(f"The margin must be 1-50 mm, not {self.margin_mm}.")
        if self.model == "growth":
            self.growth.validate()


def _volumes(seg: np.ndarray, voxel_ml: float) -> dict[str, float]:
    return {
        "ncr_ml": round(np.count_nonzero(seg == 1) * voxel_ml, 3),
        "ed_ml": round(np.count_nonzero(seg == 2) * voxel_ml, 3),
        "et_ml": round(np.count_nonzero(seg == 4) * voxel_ml, 3),
        "whole_ml": round(np.count_nonzero(seg) * voxel_ml, 3),
    }


def _changed(case: Case, arrays: dict[str, np.ndarray], seg: np.ndarray) -> int:
    changed = seg != case.seg
    for channel, array in arrays.items():
        changed |= array != case.arrays[channel]
    return int(changed.sum())


def _growth_points(case: Case, classes: np.ndarray, request: ProgressRequest, tell: Callable[[float, str], None], inpainter: Inpainter | None):
    tell(0.1, "solving the growth model")
    states = grow(case.seg, classes, case.affine, request.months, request.growth)
    previous = case.seg
    from .appearance import render_growth

    for i, (month, state) in enumerate(zip(request.months, states, strict=True)):
        tell(0.4 + 0.5 * i / len(request.months), f"rendering month {month:g}")
        if month == 0:
            yield month, dict(case.arrays), case.seg, {"front_speed": state["front"]}  # nothing crossed yet: None, 0 voxels
            continue
        labels = labels_at(previous, state["c"], state["above"], classes, request.growth.necrosis_days)
        previous = labels
        if inpainter is not None:
            arrays = inpainter.render(case.arrays, case.affine, case.seg, case.had_seg, labels, request.growth.mass_effect, request.margin_mm)
        else:
            arrays, _ = render_growth(case.arrays, classes, case.spacing, case.seg, labels, request.growth.mass_effect, request.margin_mm, request.seed + i)
        yield month, arrays, labels, {"changed_within_mm_of_tumour": request.margin_mm, "front_speed": state["front"]}


def _atrophy_points(case: Case, classes: np.ndarray, request: ProgressRequest, tell: Callable[[float, str], None]):
    regions = region_map(classes, case.spacing)
    rates = {**RATES[request.profile], **request.rates}
    for i, month in enumerate(request.months):
        tell(0.1 + 0.8 * i / len(request.months), f"deforming to month {month:g}")
        if month == 0:
            yield month, dict(case.arrays), case.seg, {"regions": regions}
            continue
        change = prescribed_change(regions, rates, month / 12.0)
        field = displacement_field(regions, change, case.spacing)
        det = jacobian(field, case.spacing)
        arrays = {c: warp(a, field, case.spacing, order=1) for c, a in case.arrays.items()}
        seg = warp(case.seg, field, case.spacing, order=0)
        measured = {name: round(float(det[regions == code].mean()) - 1.0, 6) for name, code in REGIONS.items() if np.any(regions == code)}
        extra = {
            "regions": regions, "field": field, "jacobian": det.astype(np.float32),
            "prescribed_change": {k: round(v, 6) for k, v in change.items()}, "measured_change": measured,
            "support_voxels": int(np.count_nonzero(np.any(field != 0, axis=-1))),
        }
        yield month, arrays, seg, extra


def run_progress(request: ProgressRequest, progress: Callable[[float, str], None] | None = None) -> Path:
    """Write the series into the new folder ``request.out``; returns it."""

    def tell(fraction: float, message: str) -> None:
        if progress:
            progress(fraction, message)

    request.validate()
    case = read_case(Path(request.case))
    out = check_target(Path(request.out))
    tell(0.02, "finding the case's tissues")
    classes = tissue_classes(case)
    series_id = case_id(new_id_key(), 0)  # random and meaningless, like a generated case id
    voxel_ml = float(np.prod(case.spacing)) / 1000.0
    tmp = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    parameters: dict[str, Any] = {"months": list(request.months), "margin_mm": request.margin_mm, "seed": request.seed}
    if request.model == "growth":
        renderer = choose_renderer(request.renderer, Path(request.case))
        inpainter = None
        if renderer == "inpaint":
            tell(0.05, "loading the tumour model")
            inpainter = Inpainter(request.tumour_model, request.steps, request.device, request.seed)
            parameters["tumour_model"] = {"id": inpainter.model_id, "steps": request.steps}
        parameters.update(growth=request.growth.to_dict(), renderer=renderer)
        points = partial(_growth_points, inpainter=inpainter)
    else:
        points = _atrophy_points
        parameters.update(profile=request.profile, rates_percent_per_year={**RATES[request.profile], **request.rates})
    try:
        tmp.mkdir()
        entries = []
        for month, arrays, seg, extra in points(case, classes, request, tell):
            name = f"{series_id}_m{month:02g}"
            (tmp / name).mkdir()
            files = {}
            for channel, array in {**arrays, LABEL_CHANNEL: seg}.items():
                files[channel] = f"{name}/{name}_{channel}.nii.gz"
                write_nifti(tmp / files[channel], array, case.affine)
            for key in ("field", "jacobian"):
                if key in extra:
                    files[key] = f"{name}/{name}_{key}.nii.gz"
                    (write_vector_field if key == "field" else write_nifti)(tmp / files[key], extra[key], case.affine)
            if "regions" in extra and not (tmp / "regions.nii.gz").exists():
                write_nifti(tmp / "regions.nii.gz", extra["regions"], case.affine)
            entry = {"month": month, "case": name, "files": files, "volumes": _volumes(seg, voxel_ml), "changed_voxels": _changed(case, arrays, seg)}
            entry.update({k: v for k, v in extra.items() if not isinstance(v, np.ndarray)})
            entries.append(entry)
        manifest = {
            "format": "medsynth-progression",
            "format_version": 1,
            "software": {"name": "MedSynth", "version": __version__},
            "model": request.model,
            "parameters": parameters,
            "input": {"channels": sorted(case.arrays), "had_seg": case.had_seg, "shape": list(case.shape), "spacing_mm": [round(float(s), 4) for s in case.spacing]},
            "regions": {str(code): name for name, code in REGIONS.items()} if request.model == "atrophy" else None,
            "time_points": entries,
            "synthetic": True,
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            out.rmdir()  # checked empty at the start
        os.replace(tmp, out)
    except PermissionError:
        raise MedSynthError(f"Cannot write into {out.parent}; choose an output folder you may write to.") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tell(1.0, "done")
    return out
