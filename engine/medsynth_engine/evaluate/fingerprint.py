"""A case's fingerprint for the memorisation audit: its head, cropped and resampled onto a small fixed grid.

Cropping to the head's bounding box and resampling to ``grid``^3 voxels removes the differences a model
or an export adds without changing who the patient is: image size, voxel size, position of the head in the
field of view. Each channel is clipped to robust percentiles, smoothed (noise does not make a copy new),
and normalised to zero mean and unit norm, so the dot product of two fingerprints is their normalised
cross-correlation (NCC). Fingerprints are small (4 channels at 32^3 are 0.5 MB), so the audit keeps the
synthetic ones in memory and streams the training set past them.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .sets import LoadedCase

__all__ = ["fingerprint", "otsu", "DEFAULT_GRID"]

DEFAULT_GRID = 32
#: Fraction of head voxels ignored on each side when taking the bounding box (robust to stray noise).
_BOX_QUANTILE = 0.005


def otsu(values: np.ndarray, bins: int = 128) -> float:
    """Otsu's threshold: the level that best splits the values into two classes (head and background)."""
    hist, edges = np.histogram(values, bins=bins)
    centres = (edges[:-1] + edges[1:]) / 2
    weight = np.cumsum(hist).astype(np.float64)
    total = weight[-1]
    mean = np.cumsum(hist * centres)
    between = (mean[-1] * weight - mean * total) ** 2 / np.maximum(weight * (total - weight), 1e-12)
    return float(centres[int(np.argmax(between[:-1]))])


def _block_mean(array: np.ndarray, factor: int) -> np.ndarray:
    """Average ``factor``^3 blocks (float32): a large volume shrinks before anything else touches it."""
    if factor == 1:
        return array.astype(np.float32)
    x, y, z = (n // factor * factor for n in array.shape)
    blocks = array[:x, :y, :z].astype(np.float32).reshape(x // factor, factor, y // factor, factor, z // factor, factor)
    return blocks.mean(axis=(1, 3, 5))


def _head(scaled: list[np.ndarray]) -> tuple[np.ndarray, tuple[slice, ...]]:
    """The head mask (Otsu on the smoothed mean of the channels, holes filled) and its robust bounding box."""
    mean = ndimage.gaussian_filter(np.mean(scaled, axis=0), 1.0)
    mask = ndimage.binary_fill_holes(mean > otsu(mean))
    if mask.sum() < 8:
        return np.ones(mean.shape, dtype=bool), tuple(slice(0, n) for n in mean.shape)
    box = []
    for axis, n in enumerate(mask.shape):
        profile = mask.sum(axis=tuple(a for a in range(3) if a != axis)).astype(np.float64)
        cdf = np.cumsum(profile) / profile.sum()
        lo = int(np.searchsorted(cdf, _BOX_QUANTILE))
        hi = int(np.searchsorted(cdf, 1.0 - _BOX_QUANTILE)) + 1
        box.append(slice(max(lo, 0), min(max(hi, lo + 2), n)))
    return ndimage.binary_dilation(mask), tuple(box)


def fingerprint(case: LoadedCase, channels: tuple[str, ...], grid: int = DEFAULT_GRID) -> torch.Tensor:
    """(C, grid, grid, grid) float32: each channel zero-mean, norm 1/sqrt(C), so a dot product is the mean NCC."""
    scaled = []
    for channel in channels:
        array = _block_mean(case.arrays[channel], max(1, min(case.arrays[channel].shape) // (2 * grid)))
        low, high = np.percentile(array, (0.5, 99.5))
        scaled.append(np.clip((array - low) / max(float(high - low), 1e-6), 0.0, 1.0))
    mask, box = _head(scaled)
    out = []
    for array in scaled:
        crop = np.where(mask, array, np.float32(0.0))[box]  # background noise says nothing about the patient
        sigma = [max(n / grid / 2.0, 0.5) for n in crop.shape]  # anti-alias, and at least half a voxel against noise
        crop = ndimage.gaussian_filter(crop, sigma)
        tensor = torch.from_numpy(np.ascontiguousarray(crop))[None, None]
        resized = F.interpolate(tensor, size=(grid,) * 3, mode="trilinear", align_corners=True)[0, 0]
        resized = resized - resized.mean()
        norm = float(resized.norm())
        out.append(resized / norm if norm > 0 else resized)
    stack = torch.stack(out) / math.sqrt(len(channels))
    return stack.float().contiguous()
