"""What the scanner adds to the ideal signals: slice-profile blur, bias field, gain, noise, skull stripping, storage.

Noise comes from numpy's seeded generator in a fixed order (CT one field, each MR channel two), on the CPU
whatever the device, so a case is the same on every machine. Drawing it is serial work, so ``NoiseStream``
draws it on a thread while the renderer computes (numpy releases the GIL while it fills an array), ahead of
its use within a memory bound.
"""

from __future__ import annotations

import math
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
import torch.nn.functional as F

from .fields import FourierField, coarse_axes, upsample_linear
from .params import SubjectParams
from .tissues import SEQUENCES

__all__ = ["NoiseStream", "acquire", "blur", "WM_REFERENCE"]

#: MR intensities are scaled so that normal white matter is about this value before gain, bias and noise.
WM_REFERENCE = 1000.0
_BIAS_WAVELENGTH_MM = 180.0


class NoiseStream:
    """The standard normal fields of a case's noisy channels, in order, drawn on a thread ahead of their use.

    Use as a context manager around the rendering, so the draws overlap the physics; at most ``AHEAD_BYTES``
    of fields wait to be used (always at least one channel's).
    """

    AHEAD_BYTES = 256 << 20

    def __init__(self, seed: int, shape: tuple[int, int, int], channels: tuple[str, ...]) -> None:
        self._rng = np.random.default_rng(seed)
        self._shape = shape
        self._counts = [2 if name in SEQUENCES else 1 for name in channels if name in SEQUENCES or name == "ct"]
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="phantom-noise")
        field_bytes = 4 * int(np.prod(shape))
        ahead = max(1, self.AHEAD_BYTES // (2 * field_bytes))
        self._pending = deque(self._pool.submit(self._draw, self._counts.pop(0)) for _ in range(min(ahead, len(self._counts))))

    def _draw(self, count: int) -> list[np.ndarray]:
        return [self._rng.standard_normal(self._shape, dtype=np.float32) for _ in range(count)]

    def next(self) -> list[np.ndarray]:
        """The next channel's fields (one for CT, two for an MR channel's Rician noise)."""
        current = self._pending.popleft().result()
        if self._counts:
            self._pending.append(self._pool.submit(self._draw, self._counts.pop(0)))
        return current

    def __enter__(self) -> NoiseStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def acquire(
    ideal: dict[str, torch.Tensor],
    brain: torch.Tensor,
    params: SubjectParams,
    grid_shape: tuple[int, int, int],
    first_mm: list[float],
    spacing: tuple[float, float, float],
    channels: tuple[str, ...],
    skull_strip: bool,
    noise: NoiseStream,
) -> dict[str, np.ndarray]:
    """Turn ideal MR signals and CT numbers on the output grid into stored volumes (int16).

    ``ideal`` holds the requested MR and CT channels; ``brain`` is the boolean brain mask (skull stripping);
    ``first_mm`` the RAS coordinates of the first voxel (for the bias fields); ``noise`` the case's noise.
    """
    mr = [name for name in channels if name in SEQUENCES]
    # Skull-stripped MR is zero outside the brain whatever the scanner did there: compute inside its bounding box
    # only, and blur only what reaches into that box (a box voxel's taps never leave the blurred block).
    fwhm = [params.acquisition_fwhm_mm[a] / spacing[a] for a in range(3)]
    box = _bounding_box(brain) if skull_strip else tuple(slice(0, n) for n in grid_shape)
    block = tuple(slice(max(0, s.start - r), min(n, s.stop + r)) for s, r, n in zip(box, blur_radii(fwhm), grid_shape, strict=True))
    inner = tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(box, block, strict=True))
    blurred = {}
    if mr and box[0].stop > box[0].start:
        stack = blur(torch.stack([ideal[name][block] for name in mr]), fwhm)
        blurred = {name: stack[(k, *inner)] for k, name in enumerate(mr)}
    inside = brain[box] if skull_strip else None
    results: dict[str, np.ndarray] = {}
    for i, name in enumerate(channels):
        if name != "ct" and name not in SEQUENCES:
            continue
        draws = [torch.from_numpy(n).to(brain.device) for n in noise.next()]
        if name == "ct":
            v = torch.add(ideal[name], draws[0], alpha=params.ct_noise_hu)
            results[name] = v.round_().clamp_(-1024, 3071).to(torch.int16).cpu().numpy()
            continue
        out = torch.zeros(grid_shape, dtype=torch.int16, device=brain.device)
        if name in blurred:
            bias = _bias(params.bias_seed + i, grid_shape, first_mm, spacing, brain.device, box)
            v = blurred[name] * torch.exp_(bias.mul_(params.bias_amplitude))
            v.mul_(params.gain)
            sigma = params.noise_fraction * WM_REFERENCE * params.gain
            v = torch.hypot(v.add_(draws[0][box], alpha=sigma), draws[1][box].mul(sigma)).round_().clamp_(0, 32767)
            out[box] = v.to(torch.int16) if inside is None else v.mul_(inside).to(torch.int16)
        results[name] = out.cpu().numpy()
    return results


def _bounding_box(mask: torch.Tensor) -> tuple[slice, slice, slice]:
    """The smallest block holding every true voxel of ``mask`` (empty slices when there are none)."""
    box = []
    for axis in range(3):
        hit = torch.nonzero(mask.any(dim=tuple(a for a in range(3) if a != axis))).flatten()
        box.append(slice(int(hit[0]), int(hit[-1]) + 1) if hit.numel() else slice(0, 0))
    return tuple(box)


def _bias(
    seed: int, shape: tuple[int, int, int], first_mm: list[float], spacing: tuple[float, float, float], device: torch.device, box: tuple[slice, ...]
) -> torch.Tensor:
    """The smooth multiplicative bias field's exponent on ``box`` of the output grid (unit standard deviation)."""
    last = [first_mm[a] + (shape[a] - 1) * spacing[a] for a in range(3)]
    axes = coarse_axes(first_mm, last, shape, _BIAS_WAVELENGTH_MM / 8.0, spacing)
    coarse = FourierField(seed, wavelength_mm=_BIAS_WAVELENGTH_MM).on_axes(axes)
    return upsample_linear(torch.from_numpy(coarse).to(device), shape, box)[0]


def blur_radii(fwhm_voxels: list[float]) -> list[int]:
    """How many voxels ``blur`` reaches along each axis (0 where it leaves the axis alone)."""
    return [len(kernel) // 2 for kernel in map(_kernel, fwhm_voxels)]


def _kernel(fwhm: float) -> list[float]:
    """The normalised Gaussian taps that add ``fwhm`` (voxels) of blur to a voxel's own one; [1.0] when under 1.04."""
    extra = math.sqrt(max(fwhm**2 - 1.0, 0.0))
    if extra < 0.3:
        return [1.0]
    sigma = extra / 2.355
    radius = max(1, int(math.ceil(3 * sigma)))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    return (kernel / kernel.sum()).tolist()


def blur(volumes: torch.Tensor, fwhm_voxels: list[float]) -> torch.Tensor:
    """Separable Gaussian blur of (C, X, Y, Z), edges replicated; FWHM of one voxel or less is left alone.

    One weighted sum of shifted views per tap: the kernels are short (at most 9 taps) and apply along one axis,
    where a 3-D convolution would pay for a full kernel's bookkeeping at every voxel.
    """
    out = volumes
    for axis, fwhm in enumerate(fwhm_voxels):
        kernel = _kernel(fwhm)
        if len(kernel) == 1:
            continue
        radius = len(kernel) // 2
        pad = [0, 0, 0, 0, 0, 0]
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = radius
        padded = F.pad(out[None], pad, mode="replicate")[0]
        n = out.shape[1 + axis]
        out = padded.narrow(1 + axis, 0, n) * kernel[0]
        for tap in range(1, len(kernel)):
            out.add_(padded.narrow(1 + axis, tap, n), alpha=kernel[tap])
    return out
