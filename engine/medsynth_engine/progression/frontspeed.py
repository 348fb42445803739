"""How fast the visible tumour front moved in white and in grey matter: the measurement behind "growth follows
white matter faster than grey".

The solver records ``T``, the day the density first reached the oedema threshold (the visible edge), in each of
its voxels. The front's local speed is 1 / |grad T|. Its median over the white-matter and over the grey-matter
voxels the front crossed compares the two tissues at the same moments and places, whatever the shape of the
brain around the tumour: a share of white matter in the invaded region would instead mostly measure how much
white matter lay around the seed. Only voxels crossed after the start whose six neighbours were crossed too count,
so every gradient is a central difference that straddles neither the starting tumour nor CSF.

A Fisher-Kolmogorov front travels at 2 sqrt(D rho) once established, so D_white = 5 D_grey gives sqrt(5) = 2.24 in
a homogeneous medium; tissue interleaved more finely than the front's width averages the two, so a real case
shows less, and 1 (to its geometry's noise) with a white/grey ratio of 1.
"""

from __future__ import annotations

import numpy as np

__all__ = ["front_speeds", "MIN_VOXELS"]

MIN_VOXELS = 20  # fewer crossed voxels of a tissue: its speed is not reported (None)


def front_speeds(arrival: np.ndarray, white: np.ndarray, grey: np.ndarray, spacing: np.ndarray) -> dict:
    """Median front speed (mm/day) in ``white`` and ``grey`` voxels from ``arrival`` (days; 0 at the start, < 0 not
    yet reached), their ratio, and how many voxels each median is over."""
    crossed = arrival > 0
    inner = np.zeros(arrival.shape, bool)
    inner[1:-1, 1:-1, 1:-1] = crossed[1:-1, 1:-1, 1:-1]
    squared = np.zeros(arrival.shape)
    for axis in range(3):
        ahead = [slice(1, -1)] * 3
        behind = [slice(1, -1)] * 3
        ahead[axis], behind[axis] = slice(2, None), slice(None, -2)
        inner[1:-1, 1:-1, 1:-1] &= crossed[tuple(ahead)] & crossed[tuple(behind)]
        squared[1:-1, 1:-1, 1:-1] += ((arrival[tuple(ahead)] - arrival[tuple(behind)]) / (2.0 * float(spacing[axis]))) ** 2
    speed = 1.0 / np.maximum(np.sqrt(squared), 1e-9)
    result: dict = {}
    for name, tissue in (("white", white), ("grey", grey)):
        where = inner & tissue
        count = int(where.sum())
        result[f"{name}_mm_per_day"] = round(float(np.median(speed[where])), 4) if count >= MIN_VOXELS else None
        result[f"{name}_voxels"] = count
    known = result["white_mm_per_day"] is not None and result["grey_mm_per_day"] is not None
    result["white_grey_ratio"] = round(result["white_mm_per_day"] / result["grey_mm_per_day"], 3) if known else None
    return result
