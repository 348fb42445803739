"""Rendering a grown tumour into the case: the phantom's contrast model, scaled to this case's own white matter.

For every MR channel the tumour compartments get the intensity the phantom's signal equations give them
relative to white matter (``phantom.tissues``: oedema, enhancing tumour with gadolinium for T1ce, necrosis),
times the case's own mean white-matter intensity in that channel; CT gets the compartments' Hounsfield units.
Compartment edges are softened by half a voxel, and the case's own white-matter noise level is added inside
the tumour so it is not smoother than its surroundings. Surrounding tissue is first pushed outward by the
mass effect: a radial, volume-displacing warp as the phantom models it, tapered to zero at ``margin_mm``
outside the tumour. Nothing farther than ``margin_mm`` from the tumour changes at all.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from ..phantom.tissues import GADOLINIUM_R1_PER_MM_S, SEQUENCES, TISSUE_INDEX, TISSUES, flair_null_ti, signal
from .case import WM

__all__ = ["render_growth", "push_tissue", "tissue_ratios"]

_COMPARTMENTS = {2: "oedema", 4: "enhancing_tumour", 1: "necrosis"}
GADOLINIUM_MM = 0.3


def tissue_ratios(channel: str) -> dict[int, float]:
    """Signal of each tumour compartment relative to white matter in ``channel`` (phantom contrast model)."""
    seq = SEQUENCES[channel]
    t1 = torch.tensor([t.t1_ms for t in TISSUES], dtype=torch.float64)
    t2 = torch.tensor([t.t2_ms for t in TISSUES], dtype=torch.float64)
    pd = torch.tensor([t.pd for t in TISSUES], dtype=torch.float64)
    ti = flair_null_ti(seq, float(t1[TISSUE_INDEX["csf"]])) if seq.kind == "flair" else 0.0
    if channel == "t1ce":
        et = TISSUE_INDEX["enhancing_tumour"]
        t1[et] = 1.0 / (1.0 / t1[et] + GADOLINIUM_R1_PER_MM_S * GADOLINIUM_MM / 1000.0)
    s = signal(seq, t1, t2, pd, ti)
    wm = float(s[TISSUE_INDEX["white_matter"]])
    return {code: float(s[TISSUE_INDEX[name]]) / wm for code, name in _COMPARTMENTS.items()}


def _mass_effect_warp(array: np.ndarray, spacing: np.ndarray, centre: np.ndarray, displaced_mm3: float, taper: np.ndarray, order: int) -> np.ndarray:
    """Resample ``array`` so tissue moves radially out of a volume ``displaced_mm3`` at ``centre`` (voxel coordinates)."""
    where = np.argwhere(taper > 0)
    if displaced_mm3 <= 0 or not len(where):
        return array
    lo, hi = where.min(0), where.max(0) + 1
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    grid = np.stack(np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi, strict=True)], indexing="ij")).astype(np.float64)
    offset = (grid - centre.reshape(3, 1, 1, 1)) * spacing.reshape(3, 1, 1, 1)
    r = np.sqrt((offset**2).sum(0))
    m = displaced_mm3 * 3.0 / (4.0 * np.pi)
    ratio = np.clip(1.0 - m / np.maximum(r, 1e-3) ** 3, 0.0, 1.0) ** (1.0 / 3.0)
    weight = taper[box]
    source = grid - weight * (1.0 - ratio) * (grid - centre.reshape(3, 1, 1, 1))
    out = array.copy()
    moved = ndimage.map_coordinates(array.astype(np.float64), source, order=order, mode="nearest")
    out[box] = np.where(weight > 0, _cast(moved, array.dtype), array[box])
    return out


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def _noise_level(array: np.ndarray, where: np.ndarray) -> float:
    """Noise SD from neighbour differences inside ``where`` (robust: median absolute difference; smooth bias cancels)."""
    diff = np.abs(np.diff(array.astype(np.float64), axis=0))[where[1:] & where[:-1]]
    return float(np.median(diff) / (0.6745 * np.sqrt(2.0))) if diff.size else 0.0


def _mass_effect(labels0: np.ndarray, labels: np.ndarray, spacing: np.ndarray, mass_effect: float, margin_mm: float) -> tuple:
    """The changed region (within ``margin_mm`` of the tumour), the warp's taper, its centre and displaced volume (mm^3)."""
    tumour = labels > 0
    distance = ndimage.distance_transform_edt(~tumour, sampling=spacing)
    region = distance <= margin_mm
    taper = np.where(tumour, 1.0, np.where(region, 0.5 * (1.0 + np.cos(np.pi * np.clip(distance / margin_mm, 0, 1))), 0.0))
    core0 = np.count_nonzero((labels0 == 1) | (labels0 == 4))
    core = (labels == 1) | (labels == 4)
    displaced = mass_effect * max(0, int(core.sum()) - core0) * float(np.prod(spacing))
    centre = np.argwhere(core if core.any() else tumour).mean(0)
    return region, taper, centre, displaced


def push_tissue(
    arrays: dict[str, np.ndarray], spacing: np.ndarray, labels0: np.ndarray, labels: np.ndarray, mass_effect: float, margin_mm: float
) -> dict[str, np.ndarray]:
    """Only the mass effect: every channel with tissue pushed out of the grown core, nothing beyond ``margin_mm`` moved."""
    region, taper, centre, displaced = _mass_effect(labels0, labels, spacing, mass_effect, margin_mm)
    out = {}
    for channel, array in arrays.items():
        warped = _mass_effect_warp(array, spacing, centre, displaced, taper, order=1)
        out[channel] = np.where(region, warped, array)
    return out


def render_growth(
    arrays: dict[str, np.ndarray], classes: np.ndarray, spacing: np.ndarray, labels0: np.ndarray, labels: np.ndarray,
    mass_effect: float, margin_mm: float, seed: int,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The case's channels showing ``labels`` (grown from ``labels0``); returns them and the changed-region mask."""
    region, taper, centre, displaced = _mass_effect(labels0, labels, spacing, mass_effect, margin_mm)
    fractions = {code: np.clip(ndimage.gaussian_filter((labels == code).astype(np.float32), 0.5), 0, 1) * region for code in _COMPARTMENTS}
    total = np.clip(sum(fractions.values()), 0.0, 1.0)
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for channel, array in arrays.items():
        warped = _mass_effect_warp(array, spacing, centre, displaced, taper, order=1)
        values = warped.astype(np.float64)
        normal_wm = (classes == WM) & (labels == 0)
        if channel in SEQUENCES and normal_wm.any():
            level, noise = float(array[normal_wm].mean()), _noise_level(array, normal_wm)
            targets = {code: level * ratio for code, ratio in tissue_ratios(channel).items()}
        elif channel == "ct":
            targets = {code: TISSUES[TISSUE_INDEX[name]].hu for code, name in _COMPARTMENTS.items()}
            noise = _noise_level(array, normal_wm) if normal_wm.any() else 0.0
        else:
            out[channel] = array
            continue
        painted = (1.0 - total) * values + sum(fractions[code] * targets[code] for code in _COMPARTMENTS)
        painted = painted + total * noise * rng.standard_normal(array.shape)
        result = array.copy()
        result[region] = _cast(painted[region], array.dtype)
        result[~region] = array[~region]
        out[channel] = result
    return out, region
