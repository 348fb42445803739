"""Noise calibration: the per-sequence temperature whose samples carry the fine detail of the real images.

The Gaussian decoder's sigma holds everything the label map does not explain: scanner noise, but also bias
fields, contrast differences between cases and the labeller's errors, most of it smooth. Sampled as independent
per-voxel noise at full strength, that spread makes images far grainier than any scan. So after training, each
sequence's temperature is set so that the samples' high-frequency energy (the mean square of image minus its
Gaussian-smoothed self, inside the brain) matches the real training images' (a moment match of the fine
detail, on the training cases' own label maps).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from .plugin import predict, sample

__all__ = ["calibrate_temperatures", "high_frequency_energy", "GRID"]

#: Temperatures tried (the chosen one is the nearest match on this grid).
GRID = np.round(np.arange(0.0, 1.0001, 0.05), 2)
_SIGMA = 1.0  # voxels


def high_frequency_energy(images: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Per channel: mean over ``brain`` of (image - Gaussian-smoothed image)^2."""
    out = []
    for channel in images:
        detail = channel - ndimage.gaussian_filter(channel, _SIGMA)
        out.append(float(np.mean(detail[brain] ** 2)) if brain.any() else 0.0)
    return np.asarray(out)


def calibrate_temperatures(net: torch.nn.Module, images: list[np.ndarray], classes: list[np.ndarray], device: torch.device) -> list[float]:
    """One temperature per sequence, matching the fine-detail energy of ``images`` rendered from their ``classes``."""
    inner = [ndimage.binary_erosion(c > 0, iterations=2) for c in classes]
    real = np.mean([high_frequency_energy(x, b) for x, b in zip(images, inner, strict=True)], axis=0)
    predictions = [predict(net, c, device) for c in classes]
    energy = np.zeros((len(GRID), len(real)))
    for i, t in enumerate(GRID):
        samples = [sample(m, s, c, k, float(t)) for k, ((m, s), c) in enumerate(zip(predictions, classes, strict=True))]
        energy[i] = np.mean([high_frequency_energy(x, b) for x, b in zip(samples, inner, strict=True)], axis=0)
    return [float(GRID[int(np.argmin(np.abs(energy[:, ch] - real[ch])))]) for ch in range(len(real))]
