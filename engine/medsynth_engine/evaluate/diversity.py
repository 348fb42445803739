"""Diversity: mean pairwise MS-SSIM within a set (MONAI's MultiScaleSSIMMetric), of volumes or of 2D slices.

Mode collapse shows as a synthetic MS-SSIM well above the real one: the model makes the same brain again
and again. The standard 5-scale, 11-voxel setting needs volumes of 160+ voxels, so the number of scales
(3) and the kernel size are fitted to the evaluation grid; the same setting is used for both sets. The
dimensionality (3D volumes or 2D slices) follows the arrays.
"""

from __future__ import annotations

import itertools

import numpy as np
import torch
from monai.metrics import MultiScaleSSIMMetric

__all__ = ["ms_ssim_setting", "mean_pairwise_ms_ssim"]

_WEIGHTS = (0.0448, 0.2856, 0.3001)  # the first three of the standard five, renormalised below
_BATCH = 8


def ms_ssim_setting(shape: tuple[int, ...]) -> dict:
    """Kernel size and scale weights that fit volumes of ``shape`` (MONAI needs side // 4 > kernel - 1)."""
    quarter = min(shape) // 4
    kernel = max(1, min(11, quarter if quarter % 2 == 1 else quarter - 1))  # odd, below side // 4 + 1
    total = sum(_WEIGHTS)
    return {"kernel_size": kernel, "kernel_sigma": 1.5 * kernel / 11, "weights": [w / total for w in _WEIGHTS], "data_range": 2.0}


def mean_pairwise_ms_ssim(volumes: list[np.ndarray]) -> float | None:
    """Mean MS-SSIM over all pairs of (C, X, Y, Z) volumes or (C, X, Y) slices in [-1, 1]; None for fewer than two."""
    if len(volumes) < 2:
        return None
    setting = ms_ssim_setting(volumes[0].shape[1:])
    metric = MultiScaleSSIMMetric(
        spatial_dims=volumes[0].ndim - 1,
        data_range=setting["data_range"],
        kernel_size=setting["kernel_size"],
        kernel_sigma=setting["kernel_sigma"],
        weights=setting["weights"],
        reduction="none",
    )
    stack = torch.from_numpy(np.stack(volumes).astype(np.float32))
    pairs = list(itertools.combinations(range(len(volumes)), 2))
    values = []
    with torch.no_grad():
        for start in range(0, len(pairs), _BATCH):
            chunk = pairs[start : start + _BATCH]
            a = stack[[i for i, _ in chunk]]
            b = stack[[j for _, j in chunk]]
            values.append(metric(a, b).reshape(len(chunk), -1).mean(1))
    return float(torch.cat(values).mean())
