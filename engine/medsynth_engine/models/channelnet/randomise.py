"""Domain randomisation: MR images painted anew on a pool subject's anatomy at every training step.

SynthSeg (Billot et al., Medical Image Analysis 2023) and SynthSR train on images whose contrast,
resolution and artefacts are drawn far beyond what scanners show, and then hold on real scans of any
contrast and resolution. Here each sample of a tissue pool (``tissuepool``) goes through, in order:

1. head with skull and scalp, or brain-extracted (the brain mask eroded or dilated by up to one voxel);
2. per sequence, a Gaussian mixture over the ten tissues: each tissue's mean is its physical signal for that
   sequence (``phantom.tissues``, gadolinium in enhancing tumour on t1ce) times a log-normal factor, its
   standard deviation a random share of white matter's, as a smooth texture; partial volumes mix them. The
   tumour's three tissues keep their physical contrast to white matter (within ``tumour_contrast_log_sigma``) in
   t1ce, t2 and flair, where that contrast is what marks a tumour (enhancement, oedema's bright signal): drawn
   freely there, a sample can show oedema darker than white matter on FLAIR and still be labelled oedema.
   Measured on two 1,200-step continuations of seg-phantom that differ only in this (bench/results/add_channel.md):
   whole-tumour Dice 0.88 against 0.80 freely drawn, worst healthy-head false positive with all four sequences
   12 ml against 68 ml (3 mm slices, skull on); one pair of runs (continued to 2,400 steps the anchored one
   drifted to 0.74), so the reason is the physics and the pair only agrees. Grey matter and CSF keep theirs
   there too (``brain_contrast_log_sigma``): drawn freely, grey matter (FLAIR 1.28, T2 1.56 of white matter) was
   brighter than the anchored oedema (1.89, 2.46) in about a fifth of the samples, and a model trained fresh on
   that labelled the blobs of grey matter (cerebellum, insula, deep nuclei) of healthy heads as oedema, tens of ml
   with all four sequences (bench/results/add_channel.md). T1 is left free: its tumour contrast resembles grey
   matter's;
3. geometry: rotation about every axis and isotropic scale (a share of samples: it is the costly step),
   left-right flip (orientation and head size), applied to images, CT, brain mask and labels together;
4. acquisition: resolution 1-6 mm on a random axis and 1-3 mm in plane (slice-profile blur, down- and
   up-sampling), extra partial-volume blur, a multiplicative bias field, gamma, Rician noise;
5. a field of view that cuts the head at a random side (labels there become background, CT air); brain-extracted
   images are zero outside the brain;
6. a random subset of the sequences, T1 alone in a fixed share (the common clinical case), normalised
   exactly as at inference (``inputs.assemble``) on the whole volume, then a patch is cut out.

``RANGES`` holds every range; the card records it. Draws come from one ``torch.Generator``; a painted
case serves a few batches (``reuse_steps``), and a resumed run paints its first cases anew.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ...phantom.tissues import GADOLINIUM_R1_PER_MM_S, TISSUE_INDEX, TISSUES, flair_null_ti, signal
from ...phantom.tissues import SEQUENCES as MR_PHYSICS
from .inputs import SEQUENCES, assemble, corner_holding
from .tissuepool import TissuePool

__all__ = ["Ranges", "RANGES", "RandomisedSet", "TUMOUR_TISSUES", "HEALTHY_BRAIN_TISSUES", "paint"]

_AIR = TISSUE_INDEX["air"]
#: The tissues of a tumour, by index: their contrast to white matter is kept in ``tumour_anchored_sequences``.
TUMOUR_TISSUES = tuple(TISSUE_INDEX[name] for name in ("oedema", "enhancing_tumour", "necrosis"))
#: Grey matter and CSF: their contrast to white matter is kept (within ``brain_contrast_log_sigma``) where the tumour's is.
HEALTHY_BRAIN_TISSUES = tuple(TISSUE_INDEX[name] for name in ("grey_matter", "csf"))
_BRAIN = len(TISSUES)
_HU = torch.tensor([t.hu for t in TISSUES])
HU_AIR = -1000.0


@dataclass(frozen=True)
class Ranges:
    """Every randomisation range (uniform between the two values unless said otherwise)."""

    geometry_probability: float = 0.4  # share of samples rotated and scaled (the pool already varies +-8 deg, 0.85-1.15)
    rotation_deg: float = 20.0  # about each axis, +-
    scale: tuple[float, float] = (0.9, 1.1)
    skull_off_probability: float = 0.5
    contrast_log_sigma: float = 0.35  # tissue mean = physical signal x exp(N(0, sigma)), per tissue and sequence
    tumour_anchored_sequences: tuple[str, ...] = ("t1ce", "t2", "flair")  # tumour tissues keep their contrast to WM here
    tumour_contrast_log_sigma: float = 0.1  # ... within exp(N(0, sigma)) of white matter's factor
    brain_contrast_log_sigma: float = 0.1  # grey matter and CSF too, in those sequences (else grey matter can pass for oedema)
    texture_std: tuple[float, float] = (0.0, 0.1)  # within-tissue standard deviation, share of the white-matter mean
    thick_slice_mm: tuple[float, float] = (1.0, 6.0)  # on one random axis
    in_plane_mm: tuple[float, float] = (1.0, 3.0)  # on the two others
    partial_volume_blur_vox: tuple[float, float] = (0.0, 0.6)  # extra Gaussian sigma
    # Bias field: smooth noise on a grid of 3-5 points per axis, log standard deviation drawn here. The first ranges
    # (peak log amplitude 0-0.5, i.e. a log sd of 0.10 at most) stayed under what the phantom's own scans draw (log sd
    # 0.03-0.2), and the healthy heads whose bias exceeded 0.104 were the ones given tumour (add_channel.md).
    bias_log_std: tuple[float, float] = (0.0, 0.3)
    bias_points: tuple[int, int] = (3, 5)
    gamma_log_sigma: float = 0.25
    noise_share: tuple[float, float] = (0.0, 0.06)  # Rician sigma, share of the white-matter mean
    fov_cut_probability: float = 0.3
    fov_cut_mm: tuple[float, float] = (10.0, 60.0)
    keep_probability: float = 0.6  # each sequence kept (at least one)
    t1_only_share: float = 0.35
    healthy_share: float = 0.5  # of each batch's samples (at least one; at batch 1 a draw)
    reuse_steps: int = 4  # a painted case serves this many batches (new patches each time): painting costs as much as a step
    tumour_patch_share: float = 0.7  # of a tumour subject's patches, those that hold tumour (anywhere in the patch)

    def to_dict(self) -> dict:
        return {"method": "SynthSeg-style domain randomisation on phantom anatomy (models/channelnet/randomise.py)", **asdict(self)}


RANGES = Ranges()


def _uniform(rng: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(1, generator=rng))


def _normal(rng: torch.Generator) -> float:
    return float(torch.randn(1, generator=rng))


def _blur(volume: torch.Tensor, sigmas: list[float]) -> torch.Tensor:
    """Separable Gaussian blur of (C, X, Y, Z) with a sigma in voxels per axis (below 0.2: none)."""
    out = volume[None]
    for axis, sigma in enumerate(sigmas):
        if sigma < 0.2:
            continue
        radius = max(1, int(math.ceil(2.5 * sigma)))
        t = torch.arange(-radius, radius + 1, dtype=volume.dtype)
        kernel = torch.exp(-0.5 * (t / sigma) ** 2)
        shape = [1, 1, 1, 1, 1]
        shape[2 + axis] = kernel.numel()
        pad = [0, 0, 0, 0, 0, 0]
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = radius
        channels = out.shape[1]
        weight = (kernel / kernel.sum()).view(shape).expand(channels, *shape[1:]).contiguous()
        out = F.conv3d(F.pad(out, pad, mode="replicate"), weight, groups=channels)
    return out[0]


def _geometry(volumes: torch.Tensor, labels: torch.Tensor, rng: torch.Generator, r: Ranges) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate and scale (C, X, Y, Z) volumes (trilinear, zero outside) and labels (nearest) about the centre."""
    angles = [math.radians(_uniform(rng, -r.rotation_deg, r.rotation_deg)) for _ in range(3)]
    scale = _uniform(rng, *r.scale)
    cx, sx, cy, sy, cz, sz = (f(a) for a in angles for f in (math.cos, math.sin))
    rot = torch.tensor([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]]) @ torch.tensor([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rot = rot @ torch.tensor([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    shape = volumes.shape[1:]
    # affine_grid works in normalised (W, H, D) = (Z, Y, X) coordinates; keep millimetres isotropic.
    extent = torch.tensor([shape[2], shape[1], shape[0]], dtype=torch.float32)
    flip = torch.flip(torch.eye(3), dims=[0])
    matrix = torch.diag(1.0 / extent) @ flip @ rot.float() @ flip @ torch.diag(extent) / scale
    theta = torch.cat([matrix, torch.zeros(3, 1)], dim=1)[None]
    grid = F.affine_grid(theta, [1, 1, *shape], align_corners=False)
    moved = F.grid_sample(volumes[None], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[0]
    moved_labels = F.grid_sample(labels[None, None].float(), grid, mode="nearest", padding_mode="zeros", align_corners=False)[0, 0]
    return moved, moved_labels.to(torch.uint8)


def _strip(fractions: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Brain extraction: tissues outside the (eroded or dilated) brain mask become air."""
    mask = (fractions[_BRAIN] > 0.5).float()[None, None]
    change = int(torch.randint(-1, 2, (1,), generator=rng))
    if change > 0:
        mask = F.max_pool3d(mask, 3, 1, 1)
    elif change < 0:
        mask = -F.max_pool3d(-mask, 3, 1, 1)
    out = fractions.clone()
    out[:_BRAIN] *= mask[0, 0]
    return out


def _tissue_means(sequence: str, rng: torch.Generator, r: Ranges, gadolinium_mM: float) -> torch.Tensor:
    """Mean signal per tissue for one sequence: physics times a log-normal factor, white matter about 1."""
    seq = MR_PHYSICS[sequence]
    t1 = torch.tensor([t.t1_ms for t in TISSUES])
    t2 = torch.tensor([t.t2_ms for t in TISSUES])
    pd = torch.tensor([t.pd for t in TISSUES])
    ti = flair_null_ti(seq, float(t1[TISSUE_INDEX["csf"]])) if seq.kind == "flair" else 0.0
    if sequence == "t1ce":
        et = TISSUE_INDEX["enhancing_tumour"]
        t1[et] = 1.0 / (1.0 / t1[et] + GADOLINIUM_R1_PER_MM_S * gadolinium_mM / 1000.0)
    means = signal(seq, t1, t2, pd, ti)
    means = means / means[TISSUE_INDEX["white_matter"]]
    factors = torch.exp(r.contrast_log_sigma * torch.randn(len(TISSUES), generator=rng))
    if sequence in r.tumour_anchored_sequences:
        wm = factors[TISSUE_INDEX["white_matter"]]
        factors[list(TUMOUR_TISSUES)] = wm * torch.exp(r.tumour_contrast_log_sigma * torch.randn(len(TUMOUR_TISSUES), generator=rng))
        factors[list(HEALTHY_BRAIN_TISSUES)] = wm * torch.exp(r.brain_contrast_log_sigma * torch.randn(len(HEALTHY_BRAIN_TISSUES), generator=rng))
    means = means * factors
    means[_AIR] = 0.0
    return means


def _acquire(image: torch.Tensor, rng: torch.Generator, r: Ranges) -> torch.Tensor:
    """Resolution, partial-volume blur, bias field, gamma and Rician noise on one (X, Y, Z) image (model grid 2 mm)."""
    shape = image.shape
    spacing = [_uniform(rng, *r.in_plane_mm) for _ in range(3)]
    spacing[int(torch.randint(3, (1,), generator=rng))] = _uniform(rng, *r.thick_slice_mm)
    extra = _uniform(rng, *r.partial_volume_blur_vox)
    # Slice profile: a Gaussian of FWHM one acquired voxel, less what the 2 mm grid already integrates.
    sigmas = [math.hypot(math.sqrt(max((s / 2.0) ** 2 - 1.0, 0.0)) / 2.355, extra) for s in spacing]
    image = _blur(image[None], sigmas)[0]
    coarse = [max(8, int(round(n * 2.0 / max(s, 2.0)))) for n, s in zip(shape, spacing, strict=True)]
    if list(coarse) != list(shape):
        image = F.interpolate(image[None, None], size=coarse, mode="trilinear", align_corners=False)
        image = F.interpolate(image, size=list(shape), mode="trilinear", align_corners=False)[0, 0]
    points = int(torch.randint(r.bias_points[0], r.bias_points[1] + 1, (1,), generator=rng))
    field = torch.randn(1, 1, points, points, points, generator=rng)
    field = F.interpolate(field, size=list(shape), mode="trilinear", align_corners=True)[0, 0]
    image = image * torch.exp(_uniform(rng, *r.bias_log_std) * field / max(float(field.std()), 1e-6))
    image = image.clamp(min=0.0)
    peak = float(image.max()) or 1.0
    image = peak * (image / peak) ** math.exp(r.gamma_log_sigma * _normal(rng))
    sigma = _uniform(rng, *r.noise_share)
    noise = torch.randn(2, *shape, generator=rng) * sigma
    return torch.sqrt((image + noise[0]) ** 2 + noise[1] ** 2)


def paint(
    fractions: torch.Tensor, labels: torch.Tensor, rng: torch.Generator, r: Ranges = RANGES
) -> tuple[dict[str, np.ndarray], torch.Tensor, torch.Tensor, dict]:
    """One randomised case from a pool subject: MR sequences (a random subset), labels, CT (HU), what was drawn.

    ``fractions`` is (T+1, X, Y, Z) float in 0-1 (last: brain), ``labels`` BraTS codes (X, Y, Z). Intensities
    are painted on the pool grid, then moved (geometry) together with CT and the brain mask, then acquired.
    """
    ct = torch.einsum("t,t...->...", _HU, fractions[:_BRAIN])
    skull_off = float(torch.rand(1, generator=rng)) < r.skull_off_probability
    tissues = _strip(fractions, rng) if skull_off else fractions
    kept = [s for s in SEQUENCES if float(torch.rand(1, generator=rng)) < r.keep_probability]
    if float(torch.rand(1, generator=rng)) < r.t1_only_share or not kept:
        kept = ["t1"] if float(torch.rand(1, generator=rng)) < 0.85 or not kept else kept[:1]
    gadolinium = _uniform(rng, 0.15, 0.5)
    half = [max(2, n // 2) for n in labels.shape]
    texture = F.interpolate(torch.randn(1, 1, *half, generator=rng), size=list(labels.shape), mode="trilinear", align_corners=False)[0, 0]
    texture = texture / float(texture.std())
    painted = []
    for name in kept:
        means = _tissue_means(name, rng, r, gadolinium)
        spread = means[TISSUE_INDEX["white_matter"]] * torch.tensor([_uniform(rng, *r.texture_std) for _ in TISSUES])
        spread[_AIR] = 0.0
        painted.append(torch.einsum("t,t...->...", means, tissues[:_BRAIN]) + torch.einsum("t,t...->...", spread, tissues[:_BRAIN]) * texture)
    volumes = torch.stack([*painted, ct - HU_AIR, tissues[_BRAIN]])
    moved = float(torch.rand(1, generator=rng)) < r.geometry_probability
    if moved:
        volumes, labels = _geometry(volumes, labels, rng, r)
    if float(torch.rand(1, generator=rng)) < 0.5:
        volumes, labels = volumes.flip(1), labels.flip(0)
    ct = (volumes[-2] + HU_AIR).clamp(-1024.0, 3071.0)
    brain = volumes[-1] > 0.5
    images: dict[str, torch.Tensor] = {}
    for name, image in zip(kept, volumes[: len(kept)], strict=True):
        image = _acquire(image, rng, r)
        images[name] = image * brain if skull_off else image
    cut = None
    if float(torch.rand(1, generator=rng)) < r.fov_cut_probability:
        axis, side = int(torch.randint(3, (1,), generator=rng)), int(torch.randint(2, (1,), generator=rng))
        width = int(_uniform(rng, *r.fov_cut_mm) / 2.0)
        index = [slice(None)] * 3
        index[axis] = slice(0, width) if side == 0 else slice(labels.shape[axis] - width, None)
        cut = tuple(index)
        for image in images.values():
            image[cut] = 0.0
        labels = labels.clone()
        labels[cut] = 0
        ct = ct.clone()
        ct[cut] = HU_AIR  # what the MR does not show, the CT does not invent: a head painted there taught air as tissue
    drawn = {"skull_off": skull_off, "sequences": kept, "moved": moved, "fov_cut": cut is not None}
    return {k: v.numpy() for k, v in images.items()}, labels, ct, drawn


class RandomisedSet:
    """Training data that ``segnet.fitting`` draws batches from: a tissue pool, painted anew at every step."""

    layout = "tissue pool (domain-randomised)"

    def __init__(self, pool: TissuePool, target: str, ranges: Ranges = RANGES) -> None:
        self.pool, self.target, self.ranges = pool, target, ranges
        self.skipped: list[dict[str, str]] = []
        self.sequences = dict.fromkeys(SEQUENCES, len(pool))
        self._preview: torch.Tensor | None = None
        self._cache: dict[bool, tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]] = {}

    def __len__(self) -> int:
        return len(self.pool)

    @property
    def inputs(self) -> torch.Tensor:
        """A fixed case (first subject, all four sequences, no randomisation) for the training mosaics."""
        if self._preview is None:
            plain = Ranges(
                geometry_probability=0.0, rotation_deg=0.0, scale=(1.0, 1.0), skull_off_probability=0.0, contrast_log_sigma=0.0,
                tumour_contrast_log_sigma=0.0, texture_std=(0.02, 0.02),
                thick_slice_mm=(2.0, 2.0), in_plane_mm=(2.0, 2.0), partial_volume_blur_vox=(0.0, 0.0), bias_log_std=(0.0, 0.0),
                gamma_log_sigma=0.0, noise_share=(0.02, 0.02), fov_cut_probability=0.0, keep_probability=1.0, t1_only_share=0.0,
            )
            images, _, _, _ = paint(self.pool.fractions[0].float() / 255.0, self.pool.labels[0], torch.Generator().manual_seed(0), plain)
            self._preview = torch.from_numpy(assemble(images))[None]
        return self._preview

    def _painted(self, rng: torch.Generator, healthy: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A painted case (input, target, labels), drawn anew every ``reuse_steps`` uses."""
        cached = self._cache.get(healthy)
        if cached is None or cached[3] >= self.ranges.reuse_steps:
            choices = torch.nonzero(self.pool.healthy == healthy)[:, 0]
            i = int(choices[int(torch.randint(len(choices), (1,), generator=rng))])
            images, labels, ct, _ = paint(self.pool.fractions[i].float() / 255.0, self.pool.labels[i], rng, self.ranges)
            cached = (torch.from_numpy(assemble(images)), labels if self.target == "seg" else ct, labels, 0)
        self._cache[healthy] = (*cached[:3], cached[3] + 1)
        return cached[:3]

    def sample(self, rng: torch.Generator, healthy: bool, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """One patch: network input (8, p, p, p) and target (p, p, p): BraTS codes or HU."""
        x, target, labels = self._painted(rng, healthy)
        shape = labels.shape
        corner = [int(torch.randint(s - patch + 1, (1,), generator=rng)) for s in shape]
        if not healthy and float(torch.rand(1, generator=rng)) < self.ranges.tumour_patch_share:
            fg = torch.nonzero(labels > 0)
            if len(fg):
                corner = corner_holding(fg[int(torch.randint(len(fg), (1,), generator=rng))], shape, patch, rng)
        box = tuple(slice(c, c + patch) for c in corner)
        return x[(slice(None), *box)], target[box]

    def healthy_count(self, rng: torch.Generator, batch_size: int) -> int:
        """Healthy samples in a batch: ``healthy_share`` of it, at least one and (from batch 2) one with a tumour."""
        if batch_size == 1:
            return int(float(torch.rand(1, generator=rng)) < self.ranges.healthy_share)
        return min(max(1, round(batch_size * self.ranges.healthy_share)), batch_size - 1)

    def batch(self, rng: torch.Generator, batch_size: int, patch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch_size`` patches, the last ``healthy_count`` of them from healthy subjects."""
        healthy_from = batch_size - self.healthy_count(rng, batch_size)
        pairs = [self.sample(rng, b >= healthy_from, patch) for b in range(batch_size)]
        return torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs])
