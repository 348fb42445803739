"""Per-case style: the case-wide differences between scans that a label map cannot explain.

Two scans of the same anatomy differ by the scanner's contrast between tissues, a bias field, the noise level and
the intensity normalisation. The renderer predicts the *mean* image of a label map, so without these every
sample looks as if it came from one scanner (the validity benchmark measured MS-SSIM 0.55 between l2i3d
samples against 0.39 between real cases). After training, each training case is described against its own
rendering by one vector per sequence:

- the mean log residual log((x + 1) / (mean + 1)) inside each tissue class (contrast between tissues);
- what is left of it averaged over a coarse grid (``GRID``^3 brain-weighted cells: the bias field);
- the log of its fine-detail level (the noise).

A Gaussian in every principal component of those vectors (cases - 1 of them) is the style model; a sample draws
its coefficients from the case's seed, paints the class offsets, upsamples the field smoothly and multiplies both
in, and scales the sampled noise. The model is a mean, an orthonormal basis and a scale per component: a Gaussian,
so no training case is reproduced. Every component is kept because the thousands of bias-field cells fill the
leading ones: the first 16 of 32 cases' components kept only 41-89 % of the variance of the per-tissue contrasts,
which are what makes real cases differ most after their percentile normalisation (bench/results/validity.md).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .labels import BACKGROUND, N_CLASSES

__all__ = ["GRID", "STYLE_PREFIX", "Style", "residual_vector", "fit_style", "draw_vector", "sample_style", "apply_style", "style_seed"]

GRID = 8
STYLE_PREFIX = "style."
_MIN_BRAIN = 0.1  # a coarse cell with less brain than this keeps the mean (no residual measured there)
_EPS = 0.05  # in (x + 1) units: keeps the log finite where an image reaches its lowest value
_DETAIL_SIGMA = 1.0  # voxels: fine detail = image minus its Gaussian-smoothed self


def style_seed(seed: int) -> int:
    """The style's own random stream for case ``seed`` (independent of the noise drawn with ``seed`` itself)."""
    return int((int(seed) * 0x5DEECE66D + 0xB) % (2**31 - 1))


def _coarse(volume: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted means of (C, X, Y, Z) over GRID^3 cells, and each cell's weight fraction."""
    size = [s // GRID for s in volume.shape[1:]]
    total = F.avg_pool3d((volume * weight)[None], size)[0]
    fraction = F.avg_pool3d(weight[None, None].float(), size)[0, 0]
    return total / fraction.clamp(min=1e-6), fraction


def _detail_level(image: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """log RMS of each channel's fine detail inside the (eroded) brain."""
    inner = ndimage.binary_erosion(brain, iterations=2)
    inner = inner if inner.any() else brain
    return np.array([np.log(np.sqrt(np.mean((c - ndimage.gaussian_filter(c, _DETAIL_SIGMA))[inner] ** 2)) + 1e-6) for c in image])


def residual_vector(image: np.ndarray, mean: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """The case's style vector against the renderer's ``mean`` (both (C, X, Y, Z) in [-1, 1]):
    [class offsets (C x N_CLASSES), coarse field (C x GRID^3), log detail level (C)]."""
    x, m = torch.from_numpy(image).float(), torch.from_numpy(mean).float()
    labels = torch.from_numpy(classes.astype(np.int64))
    brain = labels > 0
    ratio = torch.log((x + 1.0 + _EPS) / (m.clamp(-1.0, 1.0) + 1.0 + _EPS)) * brain
    offsets = torch.zeros(x.shape[0], N_CLASSES)
    for k in range(1, N_CLASSES):
        inside = labels == k
        if inside.any():
            offsets[:, k] = ratio[:, inside].mean(dim=1)
    left = ratio - offsets[:, labels] * brain
    cells, fraction = _coarse(left, brain.float())
    cells[:, fraction < _MIN_BRAIN] = 0.0
    detail = torch.from_numpy(_detail_level(image, classes > 0)).float()
    return torch.cat([offsets.reshape(-1), cells.reshape(-1), detail]).numpy()


def fit_style(vectors: np.ndarray) -> dict[str, torch.Tensor]:
    """The style model from (cases, D) style vectors: mean and spread per dimension, basis (K, D) orthonormal rows of the
    standardised vectors' principal components (all K = cases - 1 of them, capped at D), per-component scale (K,), so
    drawn vectors vary as much as the training cases' in every dimension."""
    vectors = np.asarray(vectors, dtype=np.float64)
    mean = vectors.mean(axis=0)
    # Standardised first: the few contrast and noise numbers count as much as the many bias-field cells.
    spread = vectors.std(axis=0)
    spread = np.where(spread > 1e-6, spread, 1.0)
    k = min(len(vectors) - 1, vectors.shape[1])
    if k < 1:
        basis, scale = np.zeros((0, vectors.shape[1])), np.zeros(0)
    else:
        _, singular, vt = np.linalg.svd((vectors - mean) / spread, full_matrices=False)
        basis, scale = vt[:k], singular[:k] / np.sqrt(len(vectors) - 1)
    return {
        f"{STYLE_PREFIX}mean": torch.from_numpy(mean).float(),
        f"{STYLE_PREFIX}spread": torch.from_numpy(spread).float(),
        f"{STYLE_PREFIX}basis": torch.from_numpy(np.ascontiguousarray(basis)).float(),
        f"{STYLE_PREFIX}scale": torch.from_numpy(scale).float(),
    }


class Style:
    """One drawn style: a log-gain field (C, X, Y, Z) over a class map and a noise multiplier per sequence."""

    def __init__(self, field: np.ndarray, noise: np.ndarray) -> None:
        self.field, self.noise = field, noise


def draw_vector(style: dict[str, torch.Tensor], seed: int) -> torch.Tensor:
    """A style vector drawn from the Gaussian ``style`` with the case's ``seed`` (the layout of ``residual_vector``)."""
    mean, spread, basis, scale = (style[f"{STYLE_PREFIX}{k}"].double() for k in ("mean", "spread", "basis", "scale"))
    z = torch.randn(len(scale), generator=torch.Generator().manual_seed(style_seed(seed)), dtype=torch.float64)
    return (mean + spread * ((z * scale) @ basis)).float()


def sample_style(style: dict[str, torch.Tensor], seed: int, channels: int, classes: np.ndarray) -> Style:
    """A style drawn from the model ``style`` with the case's ``seed``, for the class map ``classes``."""
    mean = style[f"{STYLE_PREFIX}mean"]
    vector = draw_vector(style, seed)
    n_offsets, n_cells = channels * N_CLASSES, channels * GRID**3
    offsets = vector[:n_offsets].reshape(channels, N_CLASSES)
    cells = vector[n_offsets : n_offsets + n_cells].reshape(1, channels, GRID, GRID, GRID)
    detail = vector[n_offsets + n_cells :] - mean[n_offsets + n_cells :]
    field = F.interpolate(cells, size=classes.shape, mode="trilinear", align_corners=False)[0]
    labels = torch.from_numpy(classes.astype(np.int64))
    field = field + offsets[:, labels]
    return Style(field.numpy(), np.exp(detail.numpy()))


def apply_style(images: np.ndarray, drawn: Style, classes: np.ndarray) -> np.ndarray:
    """``images`` (in [-1, 1]) with the drawn gain multiplied in inside the brain; background untouched."""
    styled = np.clip((images + 1.0) * np.exp(drawn.field) - 1.0, -1.0, 1.0).astype(np.float32)
    styled[:, classes == 0] = BACKGROUND
    return styled
