"""Smooth random fields as sums of random Fourier modes: cheap, smooth everywhere, replayable from a seed."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["FourierField"]


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

    def __call__(self, points_mm: torch.Tensor) -> torch.Tensor:
        """Evaluate at points (N, 3); returns (N, components)."""
        c, m = self.omega.shape[:2]
        omega = torch.from_numpy(self.omega.reshape(c * m, 3)).to(points_mm)
        phase = torch.from_numpy(self.phase.reshape(c * m)).to(points_mm)
        amp = torch.from_numpy(self.amp).to(points_mm)
        out = torch.empty(points_mm.shape[0], c, dtype=points_mm.dtype, device=points_mm.device)
        chunk = 1 << 18
        for start in range(0, points_mm.shape[0], chunk):
            waves = torch.sin(points_mm[start : start + chunk] @ omega.T + phase).view(-1, c, m)
            out[start : start + chunk] = (waves * amp).sum(dim=-1)
        return out
