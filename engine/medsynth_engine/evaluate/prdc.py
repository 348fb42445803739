"""Fidelity and diversity, separately: precision, recall, density and coverage of a synthetic set.

Kynkäänniemi et al. 2019 (precision/recall) and Naeem et al. 2020 (density/coverage), on feature vectors
with k-nearest-neighbour balls: each real case's ball reaches its k-th nearest real neighbour.
- precision: share of synthetic cases inside some real ball (fidelity: do samples look real?);
- recall: share of real cases inside some synthetic ball (the synthetic ball reaching its k-th synthetic
  neighbour): diversity, does the synthetic set reach all of the real variation?;
- density: how many real balls hold a synthetic case, on average, divided by k: ~1 for the same distribution,
  above 1 when samples crowd the dense middle of the real set, below 1 when they stray;
- coverage: share of real cases whose ball holds at least one synthetic case (diversity, robust to outliers).
Identical sets give precision = recall = coverage = 1 and density = (k + 1) / k (each ball also holds its own
centre). A collapsed set keeps precision but loses recall and coverage; a set that varies more than the
real one keeps recall and coverage but loses precision and density.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NEAREST_K", "prdc"]

NEAREST_K = 5


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum((a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T, 0.0))


def _radii(x: np.ndarray, k: int) -> np.ndarray:
    return np.sort(_distances(x, x), axis=1)[:, k]  # column 0 is the point itself


def prdc(real: np.ndarray, synthetic: np.ndarray, k: int = NEAREST_K) -> dict[str, float]:
    """PRDC of (M, D) synthetic features against (N, D) real features; k is capped below each set's size."""
    k_real = max(1, min(k, len(real) - 1))
    k_syn = max(1, min(k, len(synthetic) - 1))
    real_radii = _radii(real, k_real)
    syn_radii = _radii(synthetic, k_syn)
    cross = _distances(real, synthetic)  # (N, M)
    inside_real = cross <= real_radii[:, None]
    return {
        "precision": float(inside_real.any(axis=0).mean()),
        "recall": float((cross <= syn_radii[None, :]).any(axis=1).mean()),
        "density": float(inside_real.sum() / (k_real * len(synthetic))),
        "coverage": float((cross.min(axis=1) <= real_radii).mean()),
        "k": float(k_real),
    }
