"""Atrophy: a deformation with a prescribed Jacobian per region, applied to the case and its labels.

Regions come from the case's own tissue classes (``case.tissue_classes``): ``cortex`` (grey matter),
``white_matter``, ``ventricles`` (deep CSF). Each gets a volume change per year; the rest of the CSF inside
the brain (sulci, cisterns) takes up the difference so the skull's content keeps its volume. The forward
displacement is the gradient of a potential whose Laplacian is the prescribed local volume change
(``J - 1``), solved spectrally with the central-difference Laplacian's own symbol, so the discrete divergence
of the field, which is the first-order Jacobian, equals the prescription in every region: the regional mean
Jacobian matches it to second order. Displacements below ``MIN_DISPLACEMENT_MM`` are set to zero: the field's
support is where it is non-zero, and every voxel outside it keeps the input's value exactly.

Default rates (% volume per year), rounded from the literature as an order of magnitude, not a fit:
- ageing: cortex -0.5, white matter -0.3, ventricles +3 (whole-brain loss of about 0.2-0.5 %/year in healthy
  elderly, Fotenos et al., Neurology 64:1032, 2005; Fox & Schott, Lancet 363:392, 2004);
- alzheimer: cortex -2.5, white matter -1, ventricles +8 (whole-brain 1-3 %/year and hippocampus about 4.7
  against 1.4 %/year in controls, Barnes et al., Neurobiol Aging 30:1711, 2009; ventricular enlargement several
  times the controls' rate, Nestor et al., Brain 131:2443, 2008).
The hippocampus is not a region here: no atlas of it installs offline with MedSynth.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ..errors import MedSynthError
from .case import CSF, GM, WM, ventricles

__all__ = ["RATES", "REGIONS", "region_map", "displacement_field", "jacobian", "warp", "MIN_DISPLACEMENT_MM"]

REGIONS = {"cortex": 1, "white_matter": 2, "ventricles": 3, "other_csf": 4}
RATES: dict[str, dict[str, float]] = {
    "ageing": {"cortex": -0.5, "white_matter": -0.3, "ventricles": 3.0},
    "alzheimer": {"cortex": -2.5, "white_matter": -1.0, "ventricles": 8.0},
}
MIN_DISPLACEMENT_MM = 0.01
_PAD = 8


def region_map(classes: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """uint8 regions: 1 cortex, 2 white matter, 3 ventricles, 4 other CSF inside the brain, 0 outside."""
    regions = np.zeros(classes.shape, np.uint8)
    regions[classes == GM] = REGIONS["cortex"]
    regions[classes == WM] = REGIONS["white_matter"]
    regions[classes == CSF] = REGIONS["other_csf"]
    regions[ventricles(classes, spacing)] = REGIONS["ventricles"]
    return regions


def prescribed_change(regions: np.ndarray, rates: dict[str, float], years: float) -> dict[str, float]:
    """Volume change ``J - 1`` per region after ``years`` (compounded), with other CSF balancing the total."""
    change = {name: (1.0 + rates[name] / 100.0) ** years - 1.0 for name in ("cortex", "white_matter", "ventricles")}
    counts = {name: int(np.count_nonzero(regions == code)) for name, code in REGIONS.items()}
    if counts["other_csf"] == 0:
        raise MedSynthError("The case shows no CSF outside the ventricles to take up the brain's volume change; give an MR case with sulci.")
    change["other_csf"] = -sum(change[n] * counts[n] for n in ("cortex", "white_matter", "ventricles")) / counts["other_csf"]
    if change["other_csf"] <= -0.9:
        raise MedSynthError("The asked rates would make the sulcal CSF vanish; lower the rates or the months.")
    return change


def displacement_field(regions: np.ndarray, change: dict[str, float], spacing: np.ndarray) -> np.ndarray:
    """Forward displacement (X, Y, Z, 3) in mm whose discrete divergence is the prescribed ``J - 1`` per region."""
    target = np.zeros(regions.shape, np.float64)
    for name, code in REGIONS.items():
        target[regions == code] = change[name]
    f = np.pad(target, _PAD)
    axes_k = [np.fft.fftfreq(n) for n in f.shape]
    symbol = np.zeros(f.shape)
    sines = []
    for a, k in enumerate(axes_k):
        shape = [1, 1, 1]
        shape[a] = -1
        s = (np.sin(2 * np.pi * k) / spacing[a]).reshape(shape)
        sines.append(s)
        symbol = symbol - s**2
    spectrum = np.fft.fftn(f)
    with np.errstate(divide="ignore", invalid="ignore"):
        potential = np.where(symbol < -1e-12, spectrum / symbol, 0.0)
    field = np.stack([np.real(np.fft.ifftn(1j * s * potential)) for s in sines], axis=-1)
    core = tuple(slice(_PAD, _PAD + n) for n in regions.shape)
    field = field[core]
    field[np.linalg.norm(field, axis=-1) < MIN_DISPLACEMENT_MM] = 0.0
    return field.astype(np.float32)


def jacobian(field: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Determinant of I + grad(displacement) by central differences."""
    grad = np.empty(field.shape[:3] + (3, 3))
    for i in range(3):
        for j in range(3):
            grad[..., i, j] = np.gradient(field[..., i].astype(np.float64), spacing[j], axis=j)
    grad += np.eye(3)
    return np.linalg.det(grad)


def warp(array: np.ndarray, field: np.ndarray, spacing: np.ndarray, *, order: int) -> np.ndarray:
    """The follow-up: out(y) = in(x) where y = x + u(x), x found by fixed-point iteration, only where u != 0."""
    support = np.any(field != 0, axis=-1)
    if not support.any():
        return array
    where = np.nonzero(support)
    y = np.stack(where).astype(np.float64)
    x = y.copy()
    components = [field[..., a].astype(np.float64) / spacing[a] for a in range(3)]
    for _ in range(6):
        u = np.stack([ndimage.map_coordinates(c, x, order=1, mode="nearest") for c in components])
        x = y - u
    values = ndimage.map_coordinates(array.astype(np.float64), x, order=order, mode="nearest")
    out = array.copy()
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        values = np.clip(np.rint(values), info.min, info.max)
    out[where] = values.astype(array.dtype)
    return out
