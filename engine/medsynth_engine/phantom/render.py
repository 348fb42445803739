"""Deterministic renderer of the phantom: subject parameters in, co-registered channels out.

Pipeline, for every output voxel (supersampled when voxels are coarser than the 1 mm atlas):
1. tumour level sets in subject space (core, necrosis, oedema shaped by white matter);
2. inverse warps back to the atlas: tumour mass effect, ventricle enlargement, smooth random deformation,
   then the subject's size, rotation and position;
3. tissue fractions from the atlas (WM, GM, CSF), replaced by tumour tissues inside the lesion, and head
   shells (CSF rim, skull with marrow, scalp) from the distance to the brain surface;
4. MR signal per tissue from its T1, T2 and proton density through each sequence's signal equation
   (partial volumes mix signals), CT numbers per tissue;
5. downsampling to the output grid, acquisition blur (thick slices), multiplicative bias field, Rician noise
   (MR) or Gaussian noise (CT), skull stripping of MR as in BraTS, and integer storage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .atlas import Atlas
from .fields import FourierField
from .params import SubjectParams, atlas_to_subject, subject_matrix
from .tissues import GADOLINIUM_R1_PER_MM_S, SEQUENCES, TISSUE_INDEX, TISSUES, flair_null_ti, signal

__all__ = ["Grid", "render", "WM_REFERENCE"]

#: MR intensities are scaled so that normal white matter is about this value before gain, bias and noise.
WM_REFERENCE = 1000.0
_N_TISSUES = len(TISSUES)


@dataclass(frozen=True)
class Grid:
    """Output voxel grid: shape (X, Y, Z), spacing in mm, and the RAS affine."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    affine: np.ndarray

    @staticmethod
    def centred(shape: tuple[int, int, int], spacing: tuple[float, float, float], centre_mm: np.ndarray) -> Grid:
        affine = np.diag([*spacing, 1.0]).astype(np.float64)
        affine[:3, 3] = np.asarray(centre_mm, dtype=np.float64) - (np.asarray(shape) - 1) / 2.0 * np.asarray(spacing)
        affine[:3, 3] = np.round(affine[:3, 3], 3)
        return Grid(tuple(int(s) for s in shape), tuple(float(s) for s in spacing), affine)


def _supersampling(spacing: tuple[float, float, float]) -> tuple[int, int, int]:
    # Sub-voxels of about 1 mm (the atlas resolution) for partial volumes, at most 2 per axis to bound the cost.
    return tuple(int(min(2, max(1, round(s / 1.0)))) for s in spacing)


def _points(grid: Grid, factors: tuple[int, int, int], device: torch.device) -> torch.Tensor:
    """RAS mm of every (sub)voxel centre, shape (X*fx, Y*fy, Z*fz, 3)."""
    axes = []
    for a in range(3):
        n, f, sp = grid.shape[a], factors[a], grid.spacing[a]
        sub = (torch.arange(n * f, dtype=torch.float64) + 0.5) / f - 0.5
        axes.append((grid.affine[a, 3] + sub * sp).to(torch.float32).to(device))
    gx, gy, gz = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([gx, gy, gz], dim=-1)


def _smooth_field(field: FourierField, grid: Grid, factors: tuple[int, int, int], wavelength_mm: float, device: torch.device) -> torch.Tensor:
    """Evaluate a smooth field on the (sub)voxel grid: exactly on a coarse grid, then trilinear upsampling.

    The fields vary over ``wavelength_mm``; sampling them every wavelength/8 and interpolating is visually
    identical and an order of magnitude cheaper than evaluating every mode at every voxel.
    Returns (components, X*fx, Y*fy, Z*fz).
    """
    fine = [grid.shape[a] * factors[a] for a in range(3)]
    step = wavelength_mm / 8.0
    coarse = []
    for a in range(3):
        extent = (fine[a] - 1) * grid.spacing[a] / factors[a]
        coarse.append(max(2, min(fine[a], int(math.ceil(extent / step)) + 1)))
    first = [grid.affine[a, 3] + (0.5 / factors[a] - 0.5) * grid.spacing[a] for a in range(3)]
    last = [first[a] + (fine[a] - 1) * grid.spacing[a] / factors[a] for a in range(3)]
    axes = [torch.linspace(first[a], last[a], coarse[a], dtype=torch.float64).to(torch.float32).to(device) for a in range(3)]
    points = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, 3)
    values = field(points).T.reshape(-1, *coarse)
    if coarse == fine:
        return values
    return F.interpolate(values[None], size=fine, mode="trilinear", align_corners=True)[0]


def _sample(volume: torch.Tensor, atlas_affine: np.ndarray, x_mm: torch.Tensor, padding: str) -> torch.Tensor:
    """Trilinear sampling of volume (C, X, Y, Z) at RAS points x_mm (..., 3); returns (C, ...)."""
    inv = torch.from_numpy(np.linalg.inv(atlas_affine)).to(x_mm)
    ijk = x_mm @ inv[:3, :3].T + inv[:3, 3]
    size = torch.tensor(volume.shape[1:], dtype=x_mm.dtype, device=x_mm.device)
    norm = 2.0 * ijk / (size - 1.0) - 1.0
    # grid_sample indexes (D, H, W) with the grid's last dim ordered (W, H, D).
    grid = norm.flip(-1).reshape(1, 1, 1, -1, 3)
    out = F.grid_sample(volume.unsqueeze(0), grid, mode="bilinear", padding_mode=padding, align_corners=True)
    return out.reshape(volume.shape[0], *x_mm.shape[:-1])


def _radial_warp(y: torch.Tensor, centre: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    return centre + (y - centre) * factor.unsqueeze(-1)


def _smoothstep(x: torch.Tensor, width: float) -> torch.Tensor:
    """Soft indicator of x < 0 with a transition of about ``width``."""
    return torch.sigmoid(-x / max(width, 1e-6))


def render(
    params: SubjectParams,
    atlas: Atlas,
    grid: Grid,
    channels: tuple[str, ...],
    *,
    skull_strip: bool = True,
    supersample: bool = True,
    device: torch.device | None = None,
) -> dict[str, np.ndarray]:
    """Render the requested channels of one subject on ``grid``.

    Returns arrays of shape ``grid.shape``: MR channels int16 in arbitrary units (white matter about 1000),
    ``ct`` int16 in Hounsfield units, ``seg`` uint8 with BraTS codes 0/1/2/4, ``brain`` the uint8 brain mask that
    skull stripping applies. The pseudo-channel
    ``tissues`` gives the partial-volume fractions of the ``TISSUES`` then the brain mask's fraction, float32
    (len(TISSUES) + 1, X, Y, Z), before any acquisition effect: the anatomy that domain-randomised training
    paints its own intensities on (models/channelnet/tissuepool.py). ``supersample=False`` samples voxel centres
    only (8x cheaper at 2 mm; partial volumes then come from the atlas's own interpolation).
    """
    device = device or torch.device("cpu")
    factors = _supersampling(grid.spacing) if supersample else (1, 1, 1)
    fine_spacing = min(grid.spacing[a] / factors[a] for a in range(3))
    y = _points(grid, factors, device)
    tumour = params.tumour

    # 1. Tumour level sets (subject space).
    core = necrosis = oedema = None
    if tumour is not None:
        c = torch.tensor(tumour.centre_mm, dtype=torch.float32, device=device)
        r = torch.linalg.norm(y - c, dim=-1)
        wavelength = 2.5 * tumour.radius_mm
        shape_noise = _smooth_field(FourierField(tumour.shape_seed, wavelength_mm=wavelength), grid, factors, wavelength, device)[0]
        rho = r / tumour.radius_mm + tumour.irregularity * shape_noise

    # 2. Inverse warps to atlas space.
    x = y
    if tumour is not None:
        m = tumour.mass_effect * tumour.radius_mm**3
        ratio = torch.clamp(1.0 - m / torch.clamp(r, min=1e-3) ** 3, min=0.0) ** (1.0 / 3.0)
        reach = torch.exp(-(torch.clamp(r - tumour.radius_mm, min=0.0) / (1.5 * tumour.radius_mm)) ** 2)
        x = _radial_warp(x, c, 1.0 - (1.0 - ratio) * reach)
    vc_np = atlas_to_subject(params, atlas, atlas.ventricle_centre_mm)
    vc = torch.tensor(vc_np, dtype=torch.float32, device=device)
    rv = torch.linalg.norm(x - vc, dim=-1)
    enlarge = 1.0 + (params.ventricle_enlargement - 1.0) * torch.exp(-((rv / (1.6 * atlas.ventricle_radius_mm)) ** 2))
    x = _radial_warp(x, vc, 1.0 / enlarge)
    deformation = _smooth_field(FourierField(params.deformation_seed, wavelength_mm=60.0, components=3), grid, factors, 60.0, device)
    flat = (x + params.deformation_mm * deformation.permute(1, 2, 3, 0)).reshape(-1, 3)
    bc = torch.tensor(atlas.brain_centre_mm, dtype=torch.float32, device=device)
    inv_m = torch.from_numpy(np.linalg.inv(subject_matrix(params))).to(flat)
    flat = (flat - bc - torch.tensor(params.translation_mm, dtype=torch.float32, device=device)) @ inv_m.T + bc
    x = flat.reshape(y.shape)

    # 3. Tissue fractions.
    maps = torch.from_numpy(atlas.maps).to(device)
    wm, gm, csf, brain = _sample(maps, atlas.affine, x, padding="zeros")
    dist = _sample(torch.from_numpy(atlas.outer_distance_mm).to(device)[None], atlas.affine, x, padding="border")[0]
    frac = torch.zeros(_N_TISSUES, *y.shape[:-1], device=device)
    frac[TISSUE_INDEX["white_matter"]] = wm
    frac[TISSUE_INDEX["grey_matter"]] = gm
    frac[TISSUE_INDEX["csf"]] = csf
    soft = 0.5 * fine_spacing
    if tumour is not None:
        width = soft / tumour.radius_mm
        core = _smoothstep(rho - 1.0, width) * brain
        necrosis = _smoothstep(rho - tumour.necrosis_fraction, width) * brain if tumour.necrosis_fraction > 0 else None
        # Vasogenic oedema spreads along white matter and spares CSF spaces.
        rho_oedema = rho - 0.6 * wm
        oedema = _smoothstep(rho_oedema - tumour.oedema_extent, width) * (1.0 - core) * brain * (1.0 - csf)
        tissue = wm + gm
        frac[TISSUE_INDEX["white_matter"]] = wm * (1.0 - oedema) * (1.0 - core)
        frac[TISSUE_INDEX["grey_matter"]] = gm * (1.0 - 0.5 * oedema) * (1.0 - core)
        frac[TISSUE_INDEX["csf"]] = csf * (1.0 - core)
        frac[TISSUE_INDEX["oedema"]] = (wm + 0.5 * gm) * oedema
        nec = necrosis if necrosis is not None else torch.zeros_like(core)
        solid = core * (1.0 - nec)
        frac[TISSUE_INDEX["enhancing_tumour"]] = solid * torch.clamp(tissue + csf, max=1.0)
        frac[TISSUE_INDEX["necrosis"]] = nec * torch.clamp(tissue + csf, max=1.0)
    outside = 1.0 - brain
    shell_noise = _smooth_field(FourierField(params.shell_seed, wavelength_mm=50.0), grid, factors, 50.0, device)[0]
    rim = params.csf_rim_mm * (1.0 + 0.3 * shell_noise)
    skull = params.skull_mm * (1.0 + 0.2 * shell_noise)
    scalp = params.scalp_mm * (1.0 + 0.2 * shell_noise)
    in_rim = _smoothstep(dist - rim, soft)
    in_skull = _smoothstep(dist - rim - skull, soft) - in_rim
    in_head = _smoothstep(dist - rim - skull - scalp, soft)
    depth = torch.clamp((dist - rim) / torch.clamp(skull, min=1e-3), 0.0, 1.0)
    marrow_share = torch.exp(-(((depth - 0.5) / 0.22) ** 2))  # diploe in the middle, tables outside
    frac[TISSUE_INDEX["csf"]] += outside * in_rim
    frac[TISSUE_INDEX["cortical_bone"]] = outside * in_skull * (1.0 - marrow_share)
    frac[TISSUE_INDEX["marrow"]] = outside * in_skull * marrow_share
    frac[TISSUE_INDEX["scalp"]] = outside * (in_head - in_skull - in_rim).clamp(min=0.0)
    frac[TISSUE_INDEX["air"]] = torch.clamp(1.0 - frac.sum(dim=0), min=0.0)

    # Labels on the fine grid, as one-hot fractions to vote on after downsampling.
    votes = None
    if "seg" in channels:
        votes = torch.zeros(4, *y.shape[:-1], device=device)
        if tumour is not None:
            inside = brain > 0.5
            core_h = (rho < 1.0) & inside
            nec_h = (rho < tumour.necrosis_fraction) & core_h
            oed_h = (rho - 0.6 * wm < tumour.oedema_extent) & ~core_h & inside & (csf < 0.5)
            votes[1] = (nec_h | (core_h & (not tumour.enhancing))).float()
            votes[3] = (core_h & ~nec_h & tumour.enhancing).float()
            votes[2] = oed_h.float()
        votes[0] = 1.0 - votes[1:].sum(dim=0)

    # 4. Signals on the fine grid, then downsampled.
    pooled: dict[str, torch.Tensor] = {}
    base_t1 = torch.tensor([t.t1_ms for t in TISSUES], device=device)
    base_t2 = torch.tensor([t.t2_ms for t in TISSUES], device=device)
    for name, (f1, f2) in params.relaxation_jitter.items():
        base_t1[TISSUE_INDEX[name]] *= f1
        base_t2[TISSUE_INDEX[name]] *= f2
    pd = torch.tensor([t.pd for t in TISSUES], device=device)
    t1_csf = float(base_t1[TISSUE_INDEX["csf"]])
    for name in channels:
        if name in SEQUENCES:
            seq = SEQUENCES[name]
            ti = flair_null_ti(seq, t1_csf) if seq.kind == "flair" else 0.0
            s = signal(seq, base_t1, base_t2, pd, ti)
            ref = float(signal(seq, base_t1[:1] / params.relaxation_jitter["white_matter"][0], base_t2[:1], pd[:1], ti))
            values = torch.einsum("t,t...->...", s / ref, frac)
            if name == "t1ce" and tumour is not None and tumour.enhancing:
                et = TISSUE_INDEX["enhancing_tumour"]
                enh_noise = _smooth_field(FourierField(tumour.shape_seed + 1, wavelength_mm=10.0), grid, factors, 10.0, device)[0]
                conc = tumour.gadolinium_mM * torch.clamp(1.0 + 0.3 * enh_noise, min=0.2)
                t1_post = 1.0 / (1.0 / base_t1[et] + GADOLINIUM_R1_PER_MM_S * conc / 1000.0)
                s_post = signal(seq, t1_post, base_t2[et].expand_as(t1_post), pd[et].expand_as(t1_post))
                values = values + frac[et] * (s_post / ref - s[et] / ref)
            pooled[name] = values * WM_REFERENCE
        elif name == "ct":
            hu = torch.tensor([t.hu for t in TISSUES], device=device)
            pooled[name] = torch.einsum("t,t...->...", hu, frac)
    pooled = {k: F.avg_pool3d(v[None, None], factors)[0, 0] for k, v in pooled.items()}
    if "tissues" in channels:
        pooled_tissues = F.avg_pool3d(torch.cat([frac, brain[None]])[None], factors)[0]
    brain_out = F.avg_pool3d(brain[None, None], factors)[0, 0] > 0.5

    # 5. Acquisition effects, per channel, with noise from a seeded numpy generator (device independent).
    rng = np.random.default_rng(params.seed ^ 0x5EED)
    results: dict[str, np.ndarray] = {}
    for i, name in enumerate(channels):
        if name in ("seg", "tissues"):
            continue
        if name == "brain":  # the skull-stripping mask itself, as ground truth for brain extraction
            results[name] = brain_out.to(torch.uint8).cpu().numpy()
            continue
        v = pooled[name]
        if name == "ct":
            v = v + torch.from_numpy(rng.standard_normal(grid.shape, dtype=np.float32)).to(device) * params.ct_noise_hu
            results[name] = torch.clamp(torch.round(v), -1024, 3071).to(torch.int16).cpu().numpy()
            continue
        v = _blur(v, [params.acquisition_fwhm_mm[a] / grid.spacing[a] for a in range(3)])
        bias = _smooth_field(FourierField(params.bias_seed + i, wavelength_mm=180.0), grid, (1, 1, 1), 180.0, device)[0]
        v = v * torch.exp(params.bias_amplitude * bias) * params.gain
        sigma = params.noise_fraction * WM_REFERENCE * params.gain
        n1 = torch.from_numpy(rng.standard_normal(grid.shape, dtype=np.float32)).to(device)
        n2 = torch.from_numpy(rng.standard_normal(grid.shape, dtype=np.float32)).to(device)
        v = torch.sqrt((v + sigma * n1) ** 2 + (sigma * n2) ** 2)
        if skull_strip:
            v = v * brain_out
        results[name] = torch.clamp(torch.round(v), 0, 32767).to(torch.int16).cpu().numpy()
    if votes is not None:
        pooled_votes = F.avg_pool3d(votes[None], factors)[0]
        codes = torch.tensor([0, 1, 2, 4], dtype=torch.uint8, device=device)
        results["seg"] = codes[torch.max(pooled_votes, dim=0).indices].cpu().numpy()
    if "tissues" in channels:
        results["tissues"] = pooled_tissues.cpu().numpy().astype(np.float32)
    return {name: results[name] for name in channels}


def _blur(volume: torch.Tensor, fwhm_voxels: list[float]) -> torch.Tensor:
    """Separable Gaussian blur; FWHM of one voxel or less is left alone (the grid already integrates that)."""
    out = volume[None, None]
    for axis, fwhm in enumerate(fwhm_voxels):
        extra = math.sqrt(max(fwhm**2 - 1.0, 0.0))
        if extra < 0.3:
            continue
        sigma = extra / 2.355
        radius = max(1, int(math.ceil(3 * sigma)))
        t = torch.arange(-radius, radius + 1, dtype=volume.dtype, device=volume.device)
        kernel = torch.exp(-0.5 * (t / sigma) ** 2)
        kernel = kernel / kernel.sum()
        shape = [1, 1, 1, 1, 1]
        shape[2 + axis] = kernel.numel()
        pad = [0, 0, 0, 0, 0, 0]
        pad[2 * (2 - axis)] = pad[2 * (2 - axis) + 1] = radius
        out = F.conv3d(F.pad(out, pad, mode="replicate"), kernel.view(shape))
    return out[0, 0]
