"""Drawing one subject inside a stratum's constraints: every draw seeded and recorded, nothing rejected at random.

The subject's prior traits come from ``phantom.draw_subject`` (the same seed gives the same anatomy as an
unconstrained case); constrained traits are then drawn uniformly inside their ranges from a second seeded
stream, and the tumour is built to the constraints: its seed site from the allowed sites, enhancement and
compartments from their ranges, and its core radius solved so that the whole tumour (NCR + ED + ET) in the
label map has a target volume drawn inside ``volume_ml``. The result is a plain ``SubjectParams``: the
renderer replays it exactly, and the manifest records it.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..errors import MedSynthError
from ..phantom.atlas import Atlas
from ..phantom.params import Focus, SubjectParams, TumourParams, atlas_to_subject, draw_subject, neutral_subject
from ..phantom.render import Grid, render
from .foci import add_satellites, check_separable, radius_cap, reach_factor, scaled
from .regions import allowed_sites
from .spec import Stratum, TumourConstraints

__all__ = ["draw_in_stratum", "subject_grid", "check_feasible", "label_volume_ml", "RADIUS_MM"]

#: Core radii the volume solver may use (the phantom's prior draws 7-22 mm).
RADIUS_MM = (3.0, 35.0)
#: The volume target is drawn this share inside each end of ``volume_ml`` so that the small difference between
#: the solver's box render and the full render cannot push a case across a bound.
_INNER = 0.03
_STREAM = 0xC0407
#: A tumour of fewer voxels than this in the label map is not a tumour a cohort can ask for.
_MIN_VOXELS = 8


def subject_grid(params: SubjectParams, atlas: Atlas, shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> Grid:
    """The output grid the phantom renders this subject on (as ``models.phantom`` does)."""
    return Grid.centred(shape, spacing, atlas.brain_centre_mm + np.asarray(params.translation_mm))


def label_volume_ml(seg: np.ndarray, spacing: tuple[float, float, float]) -> float:
    return float(np.count_nonzero(seg)) * float(np.prod(spacing)) / 1000.0


def _box_volume(params: SubjectParams, atlas: Atlas, grid: Grid) -> float:
    """Whole-tumour volume (ml) of the label map, rendered only in the tumour's box of the output grid."""
    t = params.tumour
    inv = np.linalg.inv(grid.affine)
    lows, highs = [], []
    for centre_mm, radius in [(t.centre_mm, t.radius_mm), *((f.centre_mm, f.radius_mm) for f in t.satellites)]:
        reach = radius * reach_factor(t) + 2.0 * max(grid.spacing)
        centre = inv[:3, :3] @ np.asarray(centre_mm) + inv[:3, 3]
        half = np.ceil(reach / np.asarray(grid.spacing))
        lows.append(np.floor(centre - half))
        highs.append(np.ceil(centre + half) + 1)
    lo = np.clip(np.min(lows, axis=0), 0, np.asarray(grid.shape)).astype(int)
    hi = np.clip(np.max(highs, axis=0), 0, np.asarray(grid.shape)).astype(int)
    if np.any(hi <= lo):
        return 0.0
    affine = grid.affine.copy()
    affine[:3, 3] = grid.affine[:3, :3] @ lo + grid.affine[:3, 3]
    box = Grid(tuple(int(v) for v in hi - lo), grid.spacing, affine)
    return label_volume_ml(render(params, atlas, box, ("seg",))["seg"], grid.spacing)


def _solve_radius(params: SubjectParams, atlas: Atlas, grid: Grid, target_ml: float, cap_mm: float = RADIUS_MM[1]) -> float | None:
    """Main core radius giving ``target_ml`` of whole tumour (within 1.5 %; satellites scaled alike), or None if no
    radius in RADIUS_MM up to ``cap_mm`` does."""
    t = params.tumour
    bounds = (RADIUS_MM[0], min(RADIUS_MM[1], cap_mm))
    radius = float(np.clip((3.0 * target_ml * 1000.0 / (4.0 * math.pi)) ** (1 / 3) / t.oedema_extent, *bounds))
    for _ in range(10):
        volume = _box_volume(replace(params, tumour=scaled(t, radius)), atlas, grid)
        if volume > 0 and abs(volume / target_ml - 1.0) < 0.015:
            return radius
        step = (target_ml / volume) ** (1 / 3) if volume > 0 else 1.5
        new = float(np.clip(radius * step, *bounds))
        if new == radius:
            return None  # at a bound and still short of (or over) the target
        radius = new
    return None


def _uniform(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1])) if bounds[1] > bounds[0] else float(bounds[0])


def _apply_anatomy(params: SubjectParams, ranges: dict[str, tuple[float, float]], rng: np.random.Generator) -> SubjectParams:
    params = replace(params)
    if "brain_size" in ranges:
        size = _uniform(rng, ranges["brain_size"])
        shape = np.asarray(params.scale) / float(np.mean(params.scale))
        params.scale = [float(v) for v in np.clip(shape * size, 0.85, 1.15)]
    if "ventricle_enlargement" in ranges:
        params.ventricle_enlargement = _uniform(rng, ranges["ventricle_enlargement"])
    if "noise" in ranges:
        params.noise_fraction = _uniform(rng, ranges["noise"])
    if "bias" in ranges:
        params.bias_amplitude = _uniform(rng, ranges["bias"])
    if "slice_thickness_mm" in ranges:
        fwhm = list(params.acquisition_fwhm_mm)
        fwhm[int(np.argmax(fwhm))] = _uniform(rng, ranges["slice_thickness_mm"])
        params.acquisition_fwhm_mm = fwhm
    return params


def _tumour(params: SubjectParams, atlas: Atlas, sites: np.ndarray, c: TumourConstraints, rng: np.random.Generator) -> TumourParams:
    site = sites[int(rng.integers(len(sites)))]
    enhancing = c.enhancing if c.enhancing is not None else bool(rng.random() < 0.85)
    if c.necrosis_fraction is not None:
        necrosis = _uniform(rng, c.necrosis_fraction) if enhancing else 0.0
    else:
        necrosis = float(rng.uniform(0.3, 0.75)) if (rng.random() < 0.8 and enhancing) else 0.0
    return TumourParams(
        centre_mm=[float(v) for v in atlas_to_subject(params, atlas, site)],
        radius_mm=float(rng.uniform(7.0, 22.0)),
        necrosis_fraction=necrosis,
        enhancing=enhancing,
        oedema_extent=_uniform(rng, c.oedema_extent) if c.oedema_extent is not None else float(rng.uniform(1.4, 2.6)),
        irregularity=float(rng.uniform(0.05, 0.25)),
        mass_effect=float(rng.uniform(0.3, 0.9)),
        gadolinium_mM=float(rng.uniform(0.15, 0.5)),
        shape_seed=int(rng.integers(2**31)),
    )


def draw_in_stratum(
    seed: int, atlas: Atlas, stratum: Stratum, shape: tuple[int, int, int], spacing: tuple[float, float, float], attempt: int = 0
) -> tuple[SubjectParams, dict[str, float]]:
    """One subject inside ``stratum`` and what was drawn for it (the volume target, the attempt).

    ``attempt`` > 0 draws afresh from another seeded stream; the caller uses it when a rendered case misses a
    bound (rare: the solver works on the tumour's box, the check on the written label map).
    """
    base = draw_subject(seed, atlas, tumour=False)
    rng = np.random.default_rng([int(seed), _STREAM, int(attempt)])
    params = _apply_anatomy(base, stratum.anatomy, rng)
    draws: dict[str, float] = {"attempt": attempt}
    c = stratum.tumour
    if c is None:
        return params, draws
    sites = allowed_sites(atlas, c, f"Stratum '{stratum.name}'")
    params.tumour = _tumour(params, atlas, sites, c, rng)
    cap = RADIUS_MM[1]
    if c.multifocal is not None:
        foci = int(rng.integers(c.multifocal[0], c.multifocal[1] + 1))
        draws["foci"] = foci
        tumour = add_satellites(params, atlas, params.tumour, sites, foci, rng) if foci > 1 else params.tumour
        cap = radius_cap(tumour, 2.0 * max(spacing)) if tumour is not None else 0.0
        if tumour is None or cap < RADIUS_MM[0]:
            return params, {**draws, "unreachable": 1.0}
        params.tumour = scaled(tumour, min(tumour.radius_mm, cap))
    if c.volume_ml is not None:
        low, high = c.volume_ml
        inner_low, inner_high = low * (1 + _INNER), high * (1 - _INNER)
        if inner_low >= inner_high:
            inner_low = inner_high = math.sqrt(low * high)
        target = math.exp(_uniform(rng, (math.log(inner_low), math.log(inner_high))))
        draws["volume_target_ml"] = target
        radius = _solve_radius(params, atlas, subject_grid(params, atlas, shape, spacing), target, cap)
        if radius is None:
            return params, {**draws, "unreachable": 1.0}
        params.tumour = scaled(params.tumour, radius)
    return params, draws


def check_feasible(stratum: Stratum, atlas: Atlas, shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> None:
    """Refuse, in one sentence and before anything is written, a stratum the phantom cannot meet."""
    c = stratum.tumour
    where = f"Stratum '{stratum.name}'"
    if c is None:
        return
    sites = allowed_sites(atlas, c, where)
    spread = check_separable(sites, c.multifocal[0], where) if c.multifocal is not None and c.multifocal[0] > 1 else None
    if c.enhancing is False and c.necrosis_fraction is not None and c.necrosis_fraction[0] > 0:
        raise MedSynthError(f"{where} cannot be met: a non-enhancing tumour has no separate necrotic core in the phantom (its whole core is NCR); drop necrosis_fraction.")
    if c.volume_ml is None:
        return
    subject = neutral_subject()
    site = sites[int(np.argmin(np.linalg.norm(sites - np.median(sites, axis=0), axis=1)))]
    extent = c.oedema_extent or (1.4, 2.6)
    low_case = TumourParams([float(v) for v in site], RADIUS_MM[0], 0.0, True, extent[0], 0.05, 0.3, 0.3, 0)
    fine = Grid.centred((200, 200, 200), (1.0, 1.0, 1.0), atlas.brain_centre_mm)  # only the tumour's box is rendered
    smallest = max(_box_volume(replace(subject, tumour=low_case), atlas, fine), _MIN_VOXELS * float(np.prod(spacing)) / 1000.0)
    if c.volume_ml[1] < smallest:
        raise MedSynthError(
            f"{where} cannot be met: the smallest tumour the phantom draws at its sites on this grid is about {smallest:.2f} ml, above the asked {c.volume_ml[1]:g} ml."
        )
    coarse = Grid.centred(tuple(max(8, int(round(s * p / 4.0))) for s, p in zip(shape, spacing, strict=True)), (4.0, 4.0, 4.0), atlas.brain_centre_mm)
    high_case = replace(low_case, radius_mm=RADIUS_MM[1], oedema_extent=extent[1])
    what = "tumour that fits the brain on this grid"
    if spread is not None:  # the foci as far apart as the sites allow, all as large as the main one, kept apart
        satellites = [Focus([float(v) for v in p], RADIUS_MM[1], i + 1) for i, p in enumerate(spread[1:])]
        high_case = replace(high_case, centre_mm=[float(v) for v in spread[0]], satellites=satellites)
        high_case = scaled(high_case, min(RADIUS_MM[1], radius_cap(high_case, 2.0 * max(spacing))))
        what = f"tumour of {len(spread)} separate foci on this grid"
    largest = _box_volume(replace(subject, tumour=high_case), atlas, coarse)
    if c.volume_ml[0] > 0.9 * largest:
        raise MedSynthError(
            f"{where} cannot be met: the largest {what} is about {largest:.0f} ml, below the asked {c.volume_ml[0]:g} ml."
        )
