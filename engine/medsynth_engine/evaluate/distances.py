"""Distances between the feature distributions of two sets: MMD with a Gaussian kernel, and the Fréchet distance.

Features are standardised with the real set's mean and spread first, so every feature counts in units of
the real variation. Both distances are exactly 0 for identical sets (the MMD is the biased V-statistic,
which is never negative; the Fréchet distance uses a symmetric matrix square root, stable for the
rank-deficient covariances of sets smaller than the number of features).
"""

from __future__ import annotations

import numpy as np

__all__ = ["standardise", "mmd", "frechet_distance"]


def standardise(real: np.ndarray, synthetic: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both (N, D) feature matrices in units of the real set's per-feature standard deviation."""
    mean = real.mean(axis=0)
    std = real.std(axis=0)
    std = np.where(std > 1e-8, std, 1.0)
    return (real - mean) / std, (synthetic - mean) / std


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2 * a @ b.T, 0.0)


def mmd(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """sqrt of the biased MMD^2 with a Gaussian kernel whose width is the median pairwise distance; and that width."""
    pooled = np.concatenate([x, y])
    d = _sq_dists(pooled, pooled)
    off = d[~np.eye(len(pooled), dtype=bool)]
    width2 = float(np.median(off)) if off.size and np.median(off) > 0 else 1.0
    k = np.exp(-d / width2)
    n = len(x)
    value = k[:n, :n].mean() + k[n:, n:].mean() - 2 * k[:n, n:].mean()
    return float(np.sqrt(max(value, 0.0))), float(np.sqrt(width2))


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    eig, vec = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vec * np.sqrt(np.clip(eig, 0.0, None))) @ vec.T


def frechet_distance(x: np.ndarray, y: np.ndarray) -> float:
    """||mu_x - mu_y||^2 + Tr(S_x + S_y - 2 (S_x^1/2 S_y S_x^1/2)^1/2) of Gaussians fitted to the two sets."""
    mu_x, mu_y = x.mean(0), y.mean(0)
    s_x = np.cov(x, rowvar=False) if len(x) > 1 else np.zeros((x.shape[1],) * 2)
    s_y = np.cov(y, rowvar=False) if len(y) > 1 else np.zeros((y.shape[1],) * 2)
    root_x = _sqrt_psd(np.atleast_2d(s_x))
    cross = _sqrt_psd(root_x @ np.atleast_2d(s_y) @ root_x)
    value = float(((mu_x - mu_y) ** 2).sum() + np.trace(s_x) + np.trace(s_y) - 2 * np.trace(cross))
    return max(value, 0.0)
