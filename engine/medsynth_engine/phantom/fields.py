"""Smooth random fields as sums of random Fourier modes: cheap, smooth everywhere, replayable from a seed.

The renderer needs them on voxel grids, which are tensor products of three coordinate axes; both steps
below exploit that instead of touching every voxel once per mode:
- a plane wave factorises per axis, sin(w.x + phi) = Im(e^(i phi) e^(i wx x) e^(i wy y) e^(i wz z)), so a
  field on a grid is one small matrix product per component;
- the renderer evaluates a field on a coarse grid (every wavelength / 8) and interpolates trilinearly, which
  is separable too: one linear interpolation per axis.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch

__all__ = ["FourierField", "upsample_linear", "coarse_axes", "support"]


class FourierField:
    """A smooth random scalar or vector field f(x) = sum_k a_k sin(w_k . x + phi_k), x in mm.

    Args:
        seed: random seed of the modes.
        wavelength_mm: typical wavelength; frequencies are drawn around 2 pi / wavelength.
        components: 1 for a scalar field, 3 for a displacement field.
        modes: number of modes per component.
    The field has zero mean and unit standard deviation per component (in expectation over space).
    """

    def __init__(self, seed: int, wavelength_mm: float, components: int = 1, modes: int = 12) -> None:
        rng = np.random.default_rng(seed)
        direction = rng.normal(size=(components, modes, 3))
        direction /= np.linalg.norm(direction, axis=-1, keepdims=True)
        freq = (2.0 * np.pi / wavelength_mm) * rng.uniform(0.5, 1.5, size=(components, modes, 1))
        self.omega = (direction * freq).astype(np.float32)
        self.phase = rng.uniform(0.0, 2.0 * np.pi, size=(components, modes)).astype(np.float32)
        self.amp = (rng.normal(size=(components, modes)) * np.sqrt(2.0 / modes)).astype(np.float32)

    def on_axes(self, axes: Sequence[np.ndarray]) -> np.ndarray:
        """Evaluate on the grid of three 1-D coordinate arrays (mm); returns float32 (components, nx, ny, nz)."""
        omega = self.omega.astype(np.float64)
        c, m = self.phase.shape
        waves = [np.exp(1j * omega[:, :, a, None] * np.asarray(axes[a], dtype=np.float64)) for a in range(3)]
        weight = self.amp.astype(np.float64) * np.exp(1j * self.phase.astype(np.float64))  # (c, m)
        plane = weight[:, :, None, None] * waves[0][:, :, :, None] * waves[1][:, :, None, :]  # (c, m, nx, ny)
        nx, ny, nz = (len(a) for a in axes)
        out = np.matmul(plane.reshape(c, m, nx * ny).transpose(0, 2, 1), waves[2])  # (c, nx * ny, nz)
        return out.imag.astype(np.float32).reshape(c, nx, ny, nz)


def coarse_axes(first: Sequence[float], last: Sequence[float], fine: Sequence[int], step_mm: float, spacing: Sequence[float]) -> list[np.ndarray]:
    """Coordinates (mm) of a coarse grid spanning first..last with about ``step_mm`` between samples, per axis.

    At least 2 samples per axis and never more than the fine grid has (then the coarse axis is the fine one).
    """
    axes = []
    for a in range(3):
        extent = (fine[a] - 1) * spacing[a]
        n = max(2, min(fine[a], int(math.ceil(extent / step_mm)) + 1))
        axes.append(np.linspace(first[a], last[a], n, dtype=np.float64).astype(np.float32))
    return axes


def upsample_linear(coarse: torch.Tensor, fine: Sequence[int], box: Sequence[slice] | None = None, coarse_sizes: Sequence[int] | None = None) -> torch.Tensor:
    """Trilinear upsampling (corners aligned) of (C, cx, cy, cz) to (C, *fine), one axis at a time.

    Each axis is a small (fine x coarse) interpolation matrix applied by a matrix product, the last axis first
    so that intermediates stay small and the full-size result is written once. ``box``: only these fine
    indices per axis (the result then has the box's shape; its values are those of the full grid). Axes whose
    sizes already match are left as they are. ``coarse_sizes``: ``coarse`` is only the samples ``support`` gives
    for ``box`` of a coarse grid of these sizes (so a small box needs only its few coarse samples evaluated).
    """
    keep = box if box is not None else (slice(None),) * 3
    out = coarse
    for axis in (3, 2, 1):
        n_in = out.shape[axis] if coarse_sizes is None else int(coarse_sizes[axis - 1])
        n_out = int(fine[axis - 1])
        if n_in == n_out:
            out = out[(slice(None),) * axis + (keep[axis - 1],)] if coarse_sizes is None else out
            continue
        matrix = _interpolation_matrix(n_out, n_in)[keep[axis - 1]]
        if coarse_sizes is not None:
            matrix = matrix[:, support(n_in, n_out, keep[axis - 1])]
        matrix = matrix.to(out.device, out.dtype)
        if axis == 3:
            out = torch.matmul(out, matrix.T)
        elif axis == 2:
            out = torch.matmul(matrix, out)
        else:
            out = torch.matmul(matrix, out.reshape(out.shape[0], out.shape[1], -1)).view(out.shape[0], -1, *out.shape[2:])
    return out.contiguous()


def support(n_in: int, n_out: int, keep: slice) -> slice:
    """The coarse samples (of ``n_in``) that interpolating the fine indices ``keep`` (of ``n_out``) reads."""
    first, stop, _ = keep.indices(n_out)
    if n_in == n_out:
        return slice(first, stop)
    lo, _ = _lower_sample(torch.tensor([first, stop - 1]), n_out, n_in)
    return slice(int(lo[0]), int(lo[1]) + 2)


def _lower_sample(index: torch.Tensor, n_out: int, n_in: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For fine indices, the coarse sample below (the interpolation's left end) and the weight of the one above."""
    pos = index.to(torch.float64) * ((n_in - 1) / max(n_out - 1, 1))
    lo = pos.floor().clamp(max=n_in - 2).long()
    return lo, (pos - lo).to(torch.float32)


def _interpolation_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """(n_out, n_in) weights of linear interpolation with the end points aligned."""
    lo, frac = _lower_sample(torch.arange(n_out), n_out, n_in)
    rows = torch.arange(n_out)
    weights = torch.zeros(n_out, n_in)
    weights[rows, lo] = 1.0 - frac
    weights[rows, lo + 1] = frac
    return weights
