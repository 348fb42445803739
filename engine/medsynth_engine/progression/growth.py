"""Tumour growth: a Fisher-Kolmogorov (reaction-diffusion) model solved on the case's own tissue.

    dc/dt = div(D(x) grad c) + rho c (1 - c),   c = tumour cell density relative to the carrying capacity

- Diffusivity differs by tissue: D_white = 5 D_grey (Swanson, Alvord & Murray, Cell Prolif 33:317, 2000, who
  simulated with D_grey = 0.0013 cm^2/day = 0.13 mm^2/day and rho = 0.012 /day; these are the defaults). No flux
  into CSF or out of the brain (D = 0 there). Patient-specific fits spread over about two orders of magnitude
  (Wang et al., Cancer Res 69:9133, 2009; Rockne et al., Phys Med Biol 55:3271, 2010), so the accepted ranges are
  D_grey 0.005-2 mm^2/day and rho 0.001-0.2 /day.
- Visible compartments from the density, with the imaging thresholds of that line of work (Harpold, Alvord &
  Swanson, J Neuropathol Exp Neurol 66:1, 2007): T1Gd-enhancing where c >= 0.8, T2/FLAIR-abnormal (oedema label)
  where c >= 0.16. Necrosis is this module's own rule, not a published threshold: tissue that has stayed at
  c >= 0.8 for ``necrosis_days`` (default 120) becomes necrotic core.
- Seeded at the case's existing tumour (NCR/ET at c = 1; oedema from 0.8 at the core's edge down to 0.16 at its
  outer edge, consistent with the thresholds) or at a chosen RAS point.
- Labels never regress between time points (a compartment can only progress: ED -> ET -> NCR).

The equation is integrated explicitly (stable time step h^2 / (6 D_max)) on the tumour's neighbourhood, on a
grid of about ``solver_mm`` (block averages of the case's voxels), and the density is interpolated back.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ..errors import MedSynthError
from .case import CSF, GM, WM
from .frontspeed import front_speeds

__all__ = ["GrowthParams", "grow", "labels_at", "ENHANCING_THRESHOLD", "OEDEMA_THRESHOLD"]

ENHANCING_THRESHOLD = 0.8
OEDEMA_THRESHOLD = 0.16
_SEVERITY = np.array([0, 3, 1, 0, 2], dtype=np.uint8)  # by BraTS code: 0 none, 1 NCR 3, 2 ED 1, 4 ET 2
_CODE_OF = np.array([0, 2, 4, 1], dtype=np.uint8)


@dataclass
class GrowthParams:
    """The model's parameters; every one is recorded in the series manifest."""

    d_grey_mm2_per_day: float = 0.13
    white_grey_ratio: float = 5.0
    rho_per_day: float = 0.012
    necrosis_days: float = 120.0
    mass_effect: float = 0.5  # share of the new core volume that displaces tissue (the phantom draws 0.3-0.9)
    seed_point_mm: list[float] | None = None  # RAS; else the case's tumour
    solver_mm: float = 2.0

    def validate(self) -> None:
        checks = [
            (0.005 <= self.d_grey_mm2_per_day <= 2.0, f"The grey-matter diffusivity must be 0.005-2 mm^2/day, not {self.d_grey_mm2_per_day}."),
            (1.0 <= self.white_grey_ratio <= 100.0, f"The white/grey diffusivity ratio must be 1-100, not {self.white_grey_ratio}."),
            (0.001 <= self.rho_per_day <= 0.2, f"The proliferation rate must be 0.001-0.2 per day, not {self.rho_per_day}."),
            (0.0 < self.necrosis_days <= 3650.0, f"necrosis_days must be above 0 and at most 3650, not {self.necrosis_days}."),
            (0.0 <= self.mass_effect <= 1.0, f"The mass effect share must be 0-1, not {self.mass_effect}."),
            (0.5 <= self.solver_mm <= 8.0, f"The solver grid must be 0.5-8 mm, not {self.solver_mm}."),
        ]
        for ok, message in checks:
            if not ok:
                raise MedSynthError(message)

    def to_dict(self) -> dict:
        return asdict(self)


def _initial_density(seg: np.ndarray, affine: np.ndarray, params: GrowthParams, sigma_mm: float) -> np.ndarray:
    c0 = np.zeros(seg.shape, np.float32)
    core, whole = (seg == 1) | (seg == 4), seg > 0
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    if whole.any():
        # Oedema read as the infiltrated margin: density falls from the enhancing threshold at the core's edge
        # to the oedema threshold at the tumour's outer edge (linear in the distances to both).
        to_edge = ndimage.distance_transform_edt(whole, sampling=spacing)
        to_core = ndimage.distance_transform_edt(~core, sampling=spacing) if core.any() else np.full(seg.shape, to_edge.max() + 1.0)
        share = to_edge / np.maximum(to_edge + to_core, 1e-6)
        c0[whole] = (OEDEMA_THRESHOLD + (ENHANCING_THRESHOLD - OEDEMA_THRESHOLD) * share[whole]).astype(np.float32)
        c0[core] = 1.0
    if params.seed_point_mm is not None:
        inv = np.linalg.inv(affine)
        ijk = inv[:3, :3] @ np.asarray(params.seed_point_mm, dtype=float) + inv[:3, 3]
        if np.any(ijk < 0) or np.any(ijk > np.asarray(seg.shape) - 1):
            raise MedSynthError(f"The seed point {tuple(params.seed_point_mm)} mm lies outside the case's volume.")
        grid = np.stack(np.meshgrid(*[np.arange(n) for n in seg.shape], indexing="ij"), axis=-1)
        r2 = ((((grid - ijk) * np.linalg.norm(affine[:3, :3], axis=0)) ** 2).sum(-1)).astype(np.float32)
        c0 = np.maximum(c0, 0.8 * np.exp(-r2 / (2.0 * sigma_mm**2)))
    if not c0.any():
        raise MedSynthError("The case has no tumour in its seg to grow; give a seed point (RAS mm) to start one.")
    return c0


def _box(c0: np.ndarray, spacing: np.ndarray, reach_mm: float, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    where = np.argwhere(c0 > 0)
    pad = np.ceil(reach_mm / spacing).astype(int)
    lo = np.maximum(where.min(0) - pad, 0)
    hi = np.minimum(where.max(0) + pad + 1, np.asarray(c0.shape))
    hi = lo + ((hi - lo) // factors) * factors  # whole solver blocks
    return lo, hi


def _pool(array: np.ndarray, factors: np.ndarray) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))[None, None]
    return F.avg_pool3d(t, tuple(int(f) for f in factors))[0, 0]


def grow(seg: np.ndarray, classes: np.ndarray, affine: np.ndarray, months: list[float], params: GrowthParams) -> list[dict]:
    """Per month (sorted, >= 0): density ``c`` and days at high density ``above`` on the case grid, and ``front``, the
    visible front's speed in white and in grey matter so far (``frontspeed.front_speeds``)."""
    params.validate()
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    factors = np.maximum(1, np.round(params.solver_mm / spacing)).astype(int)
    h = spacing * factors
    c0 = _initial_density(seg, affine, params, sigma_mm=float(h.max()))
    d_white = params.d_grey_mm2_per_day * params.white_grey_ratio
    days_total = max(months) * 365.25 / 12.0
    reach = 2.0 * math.sqrt(d_white * params.rho_per_day) * days_total * 1.5 + 4.0 * float(h.max())
    lo, hi = _box(c0, spacing, reach, factors)
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    diff = _pool((classes[box] == WM) * d_white + (classes[box] == GM) * params.d_grey_mm2_per_day, factors)
    tissue = _pool(classes[box] > CSF, factors) > 0.5
    diff = torch.where(tissue, diff, torch.zeros_like(diff))
    c = _pool(c0[box], factors)
    faces = []
    for axis in range(3):
        a, b = diff.narrow(axis, 0, diff.shape[axis] - 1), diff.narrow(axis, 1, diff.shape[axis] - 1)
        faces.append(torch.where((a > 0) & (b > 0), 2 * a * b / (a + b).clamp(min=1e-12), torch.zeros_like(a)) / float(h[axis]) ** 2)
    dt = 0.9 / (2.0 * float(sum(float(f.max()) for f in faces)) + 1e-12) if any(float(f.max()) > 0 for f in faces) else 1.0
    dt = min(dt, 0.1 / params.rho_per_day)
    above = torch.zeros_like(c)
    arrival = torch.where(c >= OEDEMA_THRESHOLD, 0.0, -1.0)  # day the visible front reached each solver voxel
    white = _pool(classes[box] == WM, factors) > 0.5
    grey = _pool(classes[box] == GM, factors) > 0.5
    results: list[dict] = []
    t = 0.0
    for month in sorted(months):
        target = month * 365.25 / 12.0
        while t < target - 1e-9:
            step = min(dt, target - t)
            change = params.rho_per_day * c * (1.0 - c)
            for axis, face in enumerate(faces):
                n = c.shape[axis]
                flux = face * (c.narrow(axis, 1, n - 1) - c.narrow(axis, 0, n - 1))
                change.narrow(axis, 0, n - 1).add_(flux)
                change.narrow(axis, 1, n - 1).sub_(flux)
            c = (c + step * change * tissue).clamp(0.0, 1.0)
            above = above + step * (c >= ENHANCING_THRESHOLD)
            t += step
            arrival = torch.where((arrival < 0) & (c >= OEDEMA_THRESHOLD), t, arrival)
        results.append({
            "c": _to_case(c, c0, box, factors, c0.shape, lo), "above": _to_case(above, np.zeros_like(c0), box, factors, c0.shape, lo),
            "front": front_speeds(arrival.numpy(), white.numpy() & tissue.numpy(), grey.numpy() & tissue.numpy(), h),
        })
    return results


def _to_case(coarse: torch.Tensor, base: np.ndarray, box: tuple, factors: np.ndarray, shape: tuple, lo: np.ndarray) -> np.ndarray:
    full = np.array(base, dtype=np.float32, copy=True)
    size = tuple(int(s.stop - s.start) for s in box)
    fine = F.interpolate(coarse[None, None], size=size, mode="trilinear", align_corners=False)[0, 0].numpy()
    full[box] = np.maximum(fine, base[box]) if base.any() else fine
    return full


def labels_at(previous: np.ndarray, c: np.ndarray, above: np.ndarray, classes: np.ndarray, necrosis_days: float) -> np.ndarray:
    """BraTS codes from the density by the thresholds, never regressing from ``previous``."""
    severity = np.zeros(c.shape, np.uint8)
    brain = classes > 0
    severity[brain & (c >= OEDEMA_THRESHOLD)] = 1
    severity[brain & (c >= ENHANCING_THRESHOLD)] = 2
    severity[brain & (c >= ENHANCING_THRESHOLD) & (above >= necrosis_days)] = 3
    return _CODE_OF[np.maximum(severity, _SEVERITY[previous])]
