"""Radiomics-style features of a case: what the distribution distances (MMD, Fréchet) are computed on.

Nothing may be downloaded, so there is no pretrained encoder (no Inception, no MedicalNet). Instead each case
is described by hand-made, interpretable features in the spirit of the Fréchet Radiomics Distance: first-order
intensity statistics and texture per image channel inside the head, and shape features of the head and the
tumour. They are computed on the common evaluation grid (images scaled to [-1, 1] per case and channel, as a
model sees them), so differences in scanner gain or field of view do not count as differences in realism.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from MedSynthLib.conventions import BRATS_LABELS

__all__ = ["case_features", "feature_names", "head_mask"]

_INTENSITY = ("mean", "std", "skewness", "kurtosis", "p10", "p50", "p90", "entropy", "grad_mean", "grad_std", "local_contrast", "laplacian_energy")
_HEAD = ("head_fraction", "head_elongation")
_TUMOUR = ("whole_tumour_fraction", *(f"{name}_share" for name in BRATS_LABELS.values()), "tumour_offcentre", "tumour_surface_ratio")


def feature_names(channels: tuple[str, ...], labels: bool) -> list[str]:
    """Names of the entries of ``case_features``'s vector, in order."""
    names = [f"{c}_{f}" for c in channels for f in _INTENSITY] + list(_HEAD)
    return names + list(_TUMOUR) if labels else names


def head_mask(images: np.ndarray) -> np.ndarray:
    """Voxels brighter than 5% of the range in the mean of the channels ([-1, 1] images)."""
    return images.mean(axis=0) > -0.9


def _intensity(volume: np.ndarray, mask: np.ndarray) -> list[float]:
    values = volume[mask]
    mean, std = float(values.mean()), float(values.std()) + 1e-6
    z = (values - mean) / std
    hist, _ = np.histogram(values, bins=32, range=(-1.0, 1.0))
    p = hist[hist > 0] / hist.sum()
    gradient = np.sqrt(sum(g**2 for g in np.gradient(volume)))[mask]
    contrast = np.mean([np.abs(np.diff(volume, axis=a)).mean() for a in range(volume.ndim)])
    laplacian = ndimage.laplace(volume)[mask]
    p10, p50, p90 = np.percentile(values, (10, 50, 90))
    return [
        mean, std, float((z**3).mean()), float((z**4).mean()), float(p10), float(p50), float(p90),
        float(-(p * np.log(p)).sum()), float(gradient.mean()), float(gradient.std()), float(contrast), float((laplacian**2).mean()),
    ]


def _elongation(mask: np.ndarray) -> float:
    coords = np.argwhere(mask).astype(np.float64)
    if len(coords) < 4:
        return 1.0
    eig = np.linalg.eigvalsh(np.cov(coords.T))
    return float(np.sqrt(max(eig[-1], 1e-9) / max(eig[0], 1e-9)))


def _tumour(seg: np.ndarray, mask: np.ndarray) -> list[float]:
    tumour = seg > 0
    size = int(tumour.sum())
    head_voxels = max(int(mask.sum()), 1)
    if size == 0:
        return [0.0, *([0.0] * len(BRATS_LABELS)), 0.0, 0.0]
    shares = [float((seg == code).sum()) / size for code in BRATS_LABELS]
    head_centre = np.argwhere(mask).mean(0) if mask.any() else np.array(seg.shape) / 2
    radius = (3 * head_voxels / (4 * np.pi)) ** (1 / 3) if seg.ndim == 3 else np.sqrt(head_voxels / np.pi)  # of a ball / disc as big as the head
    offcentre = float(np.linalg.norm(np.argwhere(tumour).mean(0) - head_centre) / radius)
    surface = int((tumour & ~ndimage.binary_erosion(tumour)).sum())
    return [size / head_voxels, *shares, offcentre, surface / size]


def case_features(images: np.ndarray, seg: np.ndarray | None) -> np.ndarray:
    """Feature vector of one case: images (C, X, Y, Z), or (C, X, Y) for a slice, in [-1, 1]; seg BraTS codes or None."""
    mask = head_mask(images)
    if not mask.any():
        mask = np.ones(mask.shape, dtype=bool)
    values: list[float] = []
    for volume in images:
        values += _intensity(volume.astype(np.float64), mask)
    values += [float(mask.mean()), _elongation(mask)]
    if seg is not None:
        values += _tumour(seg, mask)
    return np.asarray(values, dtype=np.float64)
