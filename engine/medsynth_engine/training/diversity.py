"""Mode-collapse watch: mean MS-SSIM between pairs of samples (MONAI), lower means more diverse.

The same figure for pairs of training cases is the reference: generated samples far more alike than
real subjects are a collapsed generator. Small grids use fewer scales and a 3-voxel kernel so the
pyramid fits (MONAI needs side > (kernel - 1) * 2^(scales - 1)).
"""

from __future__ import annotations

import torch
from monai.metrics.regression import compute_ms_ssim

__all__ = ["pairwise_ms_ssim"]

_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def _scales(side: int, kernel: int) -> int:
    scales = 1
    while scales < len(_WEIGHTS) and (kernel - 1) * 2**scales < side:
        scales += 1
    return scales


def pairwise_ms_ssim(volumes: torch.Tensor) -> float | None:
    """Mean MS-SSIM over disjoint pairs (0,1), (2,3)... of (N, C, R, R, R) images in [-1, 1]; None if N < 2."""
    n = volumes.shape[0] - volumes.shape[0] % 2
    if n < 2:
        return None
    side = int(min(volumes.shape[2:]))
    kernel = 3 if side < 64 else 7
    scales = _scales(side, kernel)
    weights = torch.tensor(_WEIGHTS[:scales])
    weights = tuple((weights / weights.sum()).tolist())
    x = ((volumes[:n].float().cpu() + 1.0) / 2.0).clamp(0.0, 1.0)
    values = compute_ms_ssim(x[0::2], x[1::2], spatial_dims=3, data_range=1.0, kernel_size=kernel, weights=weights)
    return float(values.mean())
