"""A slice's fingerprint for the 2D memorisation audit: its head, cropped and resampled onto a small square grid.

The 2D twin of ``evaluate.fingerprint``: cropping to the head's bounding box and resampling to ``grid``^2 pixels
removes what a 2D model changes without changing whose slice it is (field of view, pixel size, where the head
sits), so a generated 128x128 slice and the native-resolution training slice it copies get the same
fingerprint. Each channel is scaled by its own robust percentiles (a slice has no volume to take them from),
smoothed (noise does not make a copy new) and normalised to zero mean and norm 1/sqrt(C), so the dot product of
two fingerprints is their mean normalised cross-correlation (NCC).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..evaluate.fingerprint import otsu

__all__ = ["slice_fingerprint", "head_slices", "DEFAULT_GRID"]

DEFAULT_GRID = 32
#: Fraction of head pixels ignored on each side when taking the bounding box (robust to stray noise).
_BOX_QUANTILE = 0.005
#: A training slice counts when its head area is at least this fraction of the case's largest (skull caps and
#: empty slices above the head say nothing about the patient and would all look alike).
MIN_HEAD_FRACTION = 0.1


def _scaled(planes: list[np.ndarray]) -> list[np.ndarray]:
    out = []
    for plane in planes:
        low, high = np.percentile(plane, (0.5, 99.5))
        out.append(np.clip((plane.astype(np.float32) - low) / max(float(high - low), 1e-6), 0.0, 1.0))
    return out


def head_slices(arrays: list[np.ndarray]) -> list[int]:
    """Axial indices of a (X, Y, Z) case whose head area reaches ``MIN_HEAD_FRACTION`` of its largest slice's."""
    volume = np.mean(_scaled(arrays), axis=0)
    if volume.shape[2] == 1:
        return [0]
    mask = ndimage.gaussian_filter(volume, 1.0) > otsu(volume)
    area = mask.sum(axis=(0, 1))
    if area.max() == 0:
        return []
    return [int(k) for k in np.flatnonzero(area >= MIN_HEAD_FRACTION * area.max())]


def _box(mask: np.ndarray) -> tuple[slice, ...]:
    box = []
    for axis, n in enumerate(mask.shape):
        profile = mask.sum(axis=1 - axis).astype(np.float64)
        cdf = np.cumsum(profile) / profile.sum()
        lo = int(np.searchsorted(cdf, _BOX_QUANTILE))
        hi = int(np.searchsorted(cdf, 1.0 - _BOX_QUANTILE)) + 1
        box.append(slice(max(lo, 0), min(max(hi, lo + 2), n)))
    return tuple(box)


def slice_fingerprint(planes: list[np.ndarray], grid: int = DEFAULT_GRID) -> torch.Tensor:
    """(C, grid, grid) float32 of one slice's (X, Y) channel planes: zero-mean channels of norm 1/sqrt(C)."""
    scaled = _scaled(planes)
    mean = ndimage.gaussian_filter(np.mean(scaled, axis=0), 1.0)
    mask = ndimage.binary_fill_holes(mean > otsu(mean))
    if mask.sum() < 8:
        mask = np.ones(mean.shape, dtype=bool)
    box = _box(mask)
    mask = ndimage.binary_dilation(mask)
    out = []
    for plane in scaled:
        crop = np.where(mask, plane, np.float32(0.0))[box]  # background noise says nothing about the patient
        crop = ndimage.gaussian_filter(crop, [max(n / grid / 2.0, 0.5) for n in crop.shape])
        tensor = torch.from_numpy(np.ascontiguousarray(crop, dtype=np.float32))[None, None]
        resized = F.interpolate(tensor, size=(grid, grid), mode="bilinear", align_corners=True)[0, 0]
        resized = resized - resized.mean()
        norm = float(resized.norm())
        out.append(resized / norm if norm > 0 else resized)
    return (torch.stack(out) / math.sqrt(len(planes))).float().contiguous()
