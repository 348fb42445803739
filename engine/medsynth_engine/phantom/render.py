"""Deterministic renderer of the phantom: subject parameters in, co-registered channels out.

Pipeline, for every output voxel (supersampled when voxels are coarser than the 1 mm atlas):
1. tumour level sets in subject space (core, necrosis, oedema shaped by white matter);
2. inverse warps back to the atlas: tumour mass effect, ventricle enlargement, smooth random deformation,
   then the subject's size, rotation and position;
3. tissue fractions from the atlas (WM, GM, CSF), replaced by tumour tissues inside the lesion, and head
   shells (CSF rim, skull with marrow, scalp) from the distance to the brain surface;
4. MR signal per tissue from its T1, T2 and proton density through each sequence's signal equation
   (partial volumes mix signals), CT numbers per tissue;
5. downsampling to the output grid, then what the scanner adds (``acquisition``).

Everything runs in float32 torch on ``device`` (a GPU when there is one). Voxel grids are tensor products of
three axes, so positions stay 1-D until a warp needs them whole, smooth fields are evaluated separably, the
atlas is sampled by one ``grid_sample`` of all its maps, and the signals of every channel come out of one
matrix product of per-tissue values with the tissue fractions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .acquisition import WM_REFERENCE, NoiseStream, acquire
from .atlas import Atlas
from .fields import FourierField, coarse_axes, support, upsample_linear
from .params import SubjectParams, atlas_to_subject, subject_matrix
from .tissues import GADOLINIUM_R1_PER_MM_S, SEQUENCES, TISSUE_INDEX, TISSUES, flair_null_ti, signal

__all__ = ["Grid", "render", "WM_REFERENCE"]

_N_TISSUES = len(TISSUES)
_WM, _GM, _CSF = TISSUE_INDEX["white_matter"], TISSUE_INDEX["grey_matter"], TISSUE_INDEX["csf"]
_OEDEMA, _ET, _NEC = TISSUE_INDEX["oedema"], TISSUE_INDEX["enhancing_tumour"], TISSUE_INDEX["necrosis"]
_BONE, _MARROW, _SCALP, _AIR = TISSUE_INDEX["cortical_bone"], TISSUE_INDEX["marrow"], TISSUE_INDEX["scalp"], TISSUE_INDEX["air"]
#: Enhancement is computed where the enhancing tissue's fraction exceeds this (it would change no stored value).
_ENHANCING_FLOOR = 1e-6
#: Soft-edge widths past the tumour's outermost edge beyond which its fractions are left out: sigmoid(-18) < 2^-25.
_TAIL_WIDTHS = 18.0


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


class _FineGrid:
    """The (sub)voxel grid the physics runs on: its axes as broadcastable 1-D tensors, and its smooth fields."""

    def __init__(self, grid: Grid, factors: tuple[int, int, int], device: torch.device) -> None:
        self.shape = tuple(grid.shape[a] * factors[a] for a in range(3))
        self.spacing = [grid.spacing[a] / factors[a] for a in range(3)]
        self.first = [grid.affine[a, 3] + (0.5 / factors[a] - 0.5) * grid.spacing[a] for a in range(3)]
        self.last = [self.first[a] + (self.shape[a] - 1) * self.spacing[a] for a in range(3)]
        self.device = device
        self.axes = []
        for a in range(3):
            sub = (torch.arange(self.shape[a], dtype=torch.float64) + 0.5) / factors[a] - 0.5
            view = [1, 1, 1]
            view[a] = -1
            self.axes.append((grid.affine[a, 3] + sub * grid.spacing[a]).to(torch.float32).to(device).view(view))

    def field(self, field: FourierField, wavelength_mm: float, box: tuple[slice, ...] | None = None) -> torch.Tensor:
        """A smooth field sampled every wavelength / 8 and interpolated trilinearly: (components, *shape or box).

        For a box, only the coarse samples it interpolates from are evaluated.
        """
        if box is None:
            return self.upsample(self.coarse(field, wavelength_mm))
        axes = coarse_axes(self.first, self.last, self.shape, wavelength_mm / 8.0, self.spacing)
        used = [axes[a][support(len(axes[a]), self.shape[a], box[a])] for a in range(3)]
        coarse = torch.from_numpy(field.on_axes(used)).to(self.device)
        return upsample_linear(coarse, self.shape, box, coarse_sizes=[len(a) for a in axes])

    def coarse(self, field: FourierField, wavelength_mm: float) -> np.ndarray:
        """The field on the coarse grid ``field`` interpolates from: (components, cx, cy, cz)."""
        return field.on_axes(coarse_axes(self.first, self.last, self.shape, wavelength_mm / 8.0, self.spacing))

    def upsample(self, coarse: np.ndarray, box: tuple[slice, ...] | None = None) -> torch.Tensor:
        """Trilinear interpolation of a coarse-grid field to this grid (or ``box`` of it)."""
        return upsample_linear(torch.from_numpy(coarse).to(self.device), self.shape, box)


def _atlas_volume(atlas: Atlas, device: torch.device) -> torch.Tensor:
    """White matter, grey matter, brain mask and outer distance as one (1, 4, X+2, Y+2, Z+2) tensor, kept per device.

    The maps get a border of zeros and the distance a copy of its edge, so sampling with border padding gives
    the maps zero padding and the distance border padding in one ``grid_sample``. CSF is not stored: the atlas
    defines it as mask - GM - WM, and interpolation is linear.
    """
    key = str(device)
    volume = atlas.tensors.get(key)
    if volume is None:
        wm, gm, _, mask = atlas.maps
        maps = np.pad(np.stack([wm, gm, mask]), ((0, 0), (1, 1), (1, 1), (1, 1)))
        dist = np.pad(atlas.outer_distance_mm, 1, mode="edge")
        volume = torch.from_numpy(np.concatenate([maps, dist[None]])[None]).to(device)
        # A voxel's four values side by side: each interpolation corner is one cache line, not four.
        volume = volume.contiguous(memory_format=torch.channels_last_3d)
        atlas.tensors[key] = volume
    return volume


def _atlas_grid_transform(params: SubjectParams, atlas: Atlas, padded_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(M, b) taking atlas-space RAS mm (before size, rotation and position) to grid_sample coordinates.

    Composes the subject's inverse pose, the atlas's inverse affine (one voxel of padding) and the [-1, 1]
    normalisation, with the components in grid_sample's (W, H, D) order.
    """
    bc = np.asarray(atlas.brain_centre_mm, dtype=np.float64)
    inv_pose = np.linalg.inv(subject_matrix(params))
    inv_affine = np.linalg.inv(atlas.affine)
    scale = 2.0 / (np.asarray(padded_shape, dtype=np.float64) - 1.0)
    m = scale[:, None] * (inv_affine[:3, :3] @ inv_pose)
    b = scale * (inv_affine[:3, :3] @ (bc - inv_pose @ (bc + np.asarray(params.translation_mm))) + inv_affine[:3, 3] + 1.0) - 1.0
    return m[::-1].copy(), b[::-1].copy()


def _smoothstep(x: torch.Tensor, width: float, edge: float = 0.0) -> torch.Tensor:
    """Soft indicator of x < edge with a transition of about ``width``."""
    scale = 1.0 / max(width, 1e-6)
    return torch.mul(x, -scale).add_(edge * scale).sigmoid_()


def render(
    params: SubjectParams,
    atlas: Atlas,
    grid: Grid,
    channels: tuple[str, ...],
    *,
    skull_strip: bool = True,
    supersample: bool = True,
    device: torch.device | str | None = None,
) -> dict[str, np.ndarray]:
    """Render the requested channels of one subject on ``grid``.

    Returns arrays of shape ``grid.shape``: MR channels int16 in arbitrary units (white matter about 1000),
    ``ct`` int16 in Hounsfield units, ``seg`` uint8 with BraTS codes 0/1/2/4, ``brain`` the uint8 brain mask that
    skull stripping applies. The pseudo-channel
    ``tissues`` gives the partial-volume fractions of the ``TISSUES`` then the brain mask's fraction, float32
    (len(TISSUES) + 1, X, Y, Z), before any acquisition effect: the anatomy that domain-randomised training
    paints its own intensities on (models/channelnet/tissuepool.py). ``supersample=False`` samples voxel centres
    only (8x cheaper at 2 mm; partial volumes then come from the atlas's own interpolation). ``device``: where
    the physics runs (the CPU by default); the same case comes out on any device, to float rounding.
    """
    device = torch.device(device) if device is not None else torch.device("cpu")
    with NoiseStream(params.seed ^ 0x5EED, grid.shape, channels) as noise:
        return _render(params, atlas, grid, channels, skull_strip, supersample, device, noise)


def _render(
    params: SubjectParams, atlas: Atlas, grid: Grid, channels: tuple[str, ...], skull_strip: bool, supersample: bool, device: torch.device, noise: NoiseStream
) -> dict[str, np.ndarray]:
    factors = _supersampling(grid.spacing) if supersample else (1, 1, 1)
    fine = _FineGrid(grid, factors, device)
    tumour = params.tumour

    # 1. Tumour level set (subject space), and 2. the inverse warps to atlas space, per component.
    xs = list(fine.axes)
    rho = None
    if tumour is not None:
        c, d, rho, factor = _focus(fine, tumour.centre_mm, tumour.radius_mm, tumour.shape_seed, tumour)
        xs = [torch.mul(factor, d[a]).add_(c[a]) for a in range(3)]
        del factor
        for focus in tumour.satellites:  # multifocal: one level set (the nearest focus) and the foci's mass effects added
            _, d, own, factor = _focus(fine, focus.centre_mm, focus.radius_mm, focus.shape_seed, tumour)
            torch.minimum(rho, own, out=rho)
            pushed = factor.neg_().add_(1.0)
            for a in range(3):
                xs[a].sub_(pushed * d[a])
            del own, factor, pushed
    vc = [float(v) for v in atlas_to_subject(params, atlas, atlas.ventricle_centre_mm).astype(np.float32)]
    e = [xs[a] - vc[a] for a in range(3)]
    reach_sq = -1.0 / (1.6 * atlas.ventricle_radius_mm) ** 2
    shrink = (e[0] ** 2 + e[1] ** 2 + e[2] ** 2).mul_(reach_sq).exp_().mul_(params.ventricle_enlargement - 1.0).add_(1.0).reciprocal_()
    volume = _atlas_volume(atlas, device)
    m, b = _atlas_grid_transform(params, atlas, volume.shape[2:])
    # The warped point is vc + e * shrink + deformation; grid_sample wants m @ point + b, and m is linear, so it applies
    # to e voxel by voxel, to the deformation on its coarse grid and to vc once: no per-voxel 3x3 product.
    deformation = FourierField(params.deformation_seed, wavelength_mm=60.0, components=3)
    moved = np.einsum("ja,a...->j...", params.deformation_mm * m.astype(np.float32), fine.coarse(deformation, 60.0))
    offset = b + m @ np.asarray(vc, dtype=np.float64)
    # grid_sample's CPU kernel gives each batch item to one thread: split the points along x into as many items.
    parts = min(torch.get_num_threads(), fine.shape[0]) if device.type == "cpu" else 1
    rows = -(-fine.shape[0] // parts)
    coords = torch.zeros(3, parts * rows, *fine.shape[1:], device=device)
    for j in range(3):
        torch.add(torch.add(e[0] * float(m[j, 0]), e[1], alpha=float(m[j, 1])), e[2], alpha=float(m[j, 2]), out=coords[j, : fine.shape[0]])
    del e, xs
    coords[:, : fine.shape[0]].mul_(shrink).add_(fine.upsample(moved.astype(np.float32) + offset.astype(np.float32)[:, None, None, None]))
    del shrink
    # (parts, rows, Y, Z, 3) as a strided view: grid_sample reads the coordinates by stride, so no interleaved copy.
    sample_at = coords.view(3, parts, rows, *fine.shape[1:]).permute(1, 2, 3, 4, 0)

    # 3. Atlas tissues at the warped points.
    sampled = F.grid_sample(volume.expand(parts, -1, -1, -1, -1), sample_at, mode="bilinear", padding_mode="border", align_corners=True)
    del sample_at
    wm, gm, brain, dist = sampled.transpose(0, 1).reshape(4, parts * rows, *fine.shape[1:])[:, : fine.shape[0]]
    del sampled
    csf = (brain - wm - gm).clamp_(min=0.0)
    signals = [name for name in channels if name in SEQUENCES or name == "ct"]
    frac = _fractions(params, fine, wm, gm, csf, brain, dist, rho) if signals or "tissues" in channels else None
    del dist

    pooled: dict[str, torch.Tensor] = {}
    if signals:
        pooled.update(zip(signals, _signals(params, frac, signals, fine), strict=True))
    if "tissues" in channels:
        pooled["tissues"] = torch.cat([frac, brain[None]])
    del frac
    codes = None
    if "seg" in channels:
        ncr, ed, et = _label_masks(tumour, rho, wm, csf, brain)
        if factors == (1, 1, 1):  # one label per voxel: the codes themselves
            codes = torch.zeros(fine.shape, dtype=torch.uint8, device=device)
            for mask, code in ((ncr, 1), (ed, 2), (et, 4)):
                codes.masked_fill_(mask, code)
        else:  # one-hot votes, averaged over each voxel's sub-voxels below
            pooled["votes"] = torch.stack([~(ncr | ed | et), ncr, ed, et]).to(torch.float32)
    pooled["brain"] = brain

    # 4. Down to the output grid: one average pool of everything (nothing to do without supersampling).
    if factors != (1, 1, 1):
        names = list(pooled)
        sizes = [pooled[k].numel() // brain.numel() for k in names]
        stacked = torch.cat([pooled[k].reshape(-1, *fine.shape) for k in names])
        stacked = F.avg_pool3d(stacked[None], factors)[0]
        pooled = {k: v[0] if k in signals or k == "brain" else v for k, v in zip(names, torch.split(stacked, sizes), strict=True)}
        if "votes" in pooled:
            table = torch.tensor([0, 1, 2, 4], dtype=torch.uint8, device=device)
            codes = table[torch.max(pooled.pop("votes"), dim=0).indices]
    brain_out = pooled.pop("brain") > 0.5

    # 5. Acquisition effects.
    results = acquire(pooled, brain_out, params, grid.shape, list(grid.affine[:3, 3]), grid.spacing, channels, skull_strip, noise)
    if "brain" in channels:  # the skull-stripping mask itself, as ground truth for brain extraction
        results["brain"] = brain_out.to(torch.uint8).cpu().numpy()
    if codes is not None:
        results["seg"] = codes.cpu().numpy()
    if "tissues" in channels:
        results["tissues"] = pooled["tissues"].cpu().numpy().astype(np.float32)
    return {name: results[name] for name in channels}


def _focus(fine: _FineGrid, centre_mm: list[float], radius_mm: float, shape_seed: int, tumour) -> tuple[list[float], list[torch.Tensor], torch.Tensor, torch.Tensor]:
    """One focus: its centre, offsets to it, its level set (1 at its core's edge) and its radial mass-effect factor."""
    c = [float(v) for v in np.asarray(centre_mm, dtype=np.float32)]
    d = [fine.axes[a] - c[a] for a in range(3)]
    r = (d[0] ** 2 + d[1] ** 2 + d[2] ** 2).sqrt_()  # one full-size tensor: the squares are 1-D
    wavelength = 2.5 * radius_mm
    shape_noise = fine.field(FourierField(shape_seed, wavelength_mm=wavelength), wavelength)[0]
    rho = (r / radius_mm).add_(shape_noise, alpha=tumour.irregularity)
    del shape_noise
    m = tumour.mass_effect * radius_mm**3
    ratio = torch.clamp(r, min=1e-3).pow_(3).reciprocal_().mul_(-m).add_(1.0).clamp_(min=0.0).pow_(1.0 / 3.0)
    reach = r.sub_(radius_mm).clamp_(min=0.0).mul_(1.0 / (1.5 * radius_mm)).square_().neg_().exp_()
    factor = ratio.sub_(1.0).mul_(reach).add_(1.0)  # 1 - (1 - ratio) * reach
    return c, d, rho, factor


def _label_masks(tumour, rho: torch.Tensor | None, wm: torch.Tensor, csf: torch.Tensor, brain: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Hard BraTS compartments on the fine grid: NCR (necrosis, or a non-enhancing core), ED, ET."""
    if tumour is None:
        empty = torch.zeros(brain.shape, dtype=torch.bool, device=brain.device)
        return empty, empty, empty
    inside = brain > 0.5
    core = (rho < 1.0) & inside
    necrotic = (rho < tumour.necrosis_fraction) & core
    oedema = (rho - 0.6 * wm < tumour.oedema_extent) & ~core & inside & (csf < 0.5)
    if tumour.enhancing:
        return necrotic, oedema, core & ~necrotic
    return core, oedema, torch.zeros_like(core)


def _fractions(
    params: SubjectParams, fine: _FineGrid, wm: torch.Tensor, gm: torch.Tensor, csf: torch.Tensor, brain: torch.Tensor, dist: torch.Tensor, rho: torch.Tensor | None
) -> torch.Tensor:
    """Partial-volume fractions of the ``TISSUES`` on the fine grid, (len(TISSUES), *grid)."""
    soft = 0.5 * min(fine.spacing)
    frac = torch.empty(_N_TISSUES, *wm.shape, device=wm.device)
    tumour = params.tumour
    frac[_WM], frac[_GM], frac[_CSF] = wm, gm, csf
    for k in (_OEDEMA, _ET, _NEC):
        frac[k] = 0.0
    if tumour is not None:
        width = soft / min([tumour.radius_mm, *(f.radius_mm for f in tumour.satellites)])
        # Beyond this level every soft edge of the tumour is under 2^-25 (18 widths past it), so 1 minus it rounds to 1
        # and the tumour changes no fraction there: compute it only in the block of the grid that holds the rest.
        box = _box(rho <= max(1.0, tumour.oedema_extent + 0.6) + _TAIL_WIDTHS * width)
        if box is not None:
            _tumour_fractions(frac[(slice(None), *box)], tumour, width, rho[box], wm[box], gm[box], csf[box], brain[box])
    outside = 1.0 - brain
    shell_noise = fine.field(FourierField(params.shell_seed, wavelength_mm=50.0), 50.0)[0]
    # Shell thicknesses vary smoothly: rim (1 + 0.3 n), skull and scalp (1 + 0.2 n) times their means.
    skull = shell_noise.mul(0.2 * params.skull_mm).add_(params.skull_mm)
    below_rim = torch.add(dist, shell_noise, alpha=-0.3 * params.csf_rim_mm).sub_(params.csf_rim_mm)
    in_rim = _smoothstep(below_rim, soft)
    below_skull = below_rim - skull
    in_skull = _smoothstep(below_skull, soft).sub_(in_rim)
    in_head = _smoothstep(below_skull.add_(shell_noise, alpha=-0.2 * params.scalp_mm).sub_(params.scalp_mm), soft)
    depth = below_rim.div_(skull.clamp_(min=1e-3)).clamp_(0.0, 1.0)
    del below_rim, below_skull, skull, shell_noise
    marrow = depth.sub_(0.5).mul_(1.0 / 0.22).square_().neg_().exp_()  # diploe in the middle, tables outside
    frac[_CSF].addcmul_(outside, in_rim)
    torch.mul(outside, in_head.sub_(in_skull).sub_(in_rim).clamp_(min=0.0), out=frac[_SCALP])
    in_skull.mul_(outside)
    torch.mul(in_skull, 1.0 - marrow, out=frac[_BONE])
    torch.mul(in_skull, marrow, out=frac[_MARROW])
    frac[_AIR] = 0.0
    torch.clamp(1.0 - frac.sum(dim=0), min=0.0, out=frac[_AIR])
    return frac


def _tumour_fractions(
    frac: torch.Tensor, tumour, width: float, rho: torch.Tensor, wm: torch.Tensor, gm: torch.Tensor, csf: torch.Tensor, brain: torch.Tensor
) -> None:
    """Write the tumour's tissues (core, necrosis, oedema) and what they spare of WM, GM and CSF into ``frac``."""
    core = _smoothstep(rho, width, 1.0).mul_(brain)
    nec = _smoothstep(rho, width, tumour.necrosis_fraction).mul_(brain) if tumour.necrosis_fraction > 0 else None
    # Vasogenic oedema spreads along white matter and spares CSF spaces; where it reaches grey matter it
    # replaces it as it does white matter, so the image shows oedema wherever the label says so.
    oedema = _smoothstep(torch.add(rho, wm, alpha=-0.6), width, tumour.oedema_extent).mul_(1.0 - core).mul_(brain).mul_(1.0 - csf)
    spared = 1.0 - core
    torch.mul(wm * (1.0 - oedema), spared, out=frac[_WM])
    torch.mul(gm * (1.0 - oedema), spared, out=frac[_GM])
    torch.mul(csf, spared, out=frac[_CSF])
    torch.mul(wm + gm, oedema, out=frac[_OEDEMA])
    del oedema, spared
    cap = torch.clamp(wm + gm + csf, max=1.0)
    if nec is None:
        torch.mul(core, cap, out=frac[_ET])
    else:
        torch.mul(core * (1.0 - nec), cap, out=frac[_ET])
        torch.mul(nec, cap, out=frac[_NEC])


def _signals(params: SubjectParams, frac: torch.Tensor, names: list[str], fine: _FineGrid) -> torch.Tensor:
    """Ideal MR signals (white matter about ``WM_REFERENCE``) and CT numbers on the fine grid, (len(names), *grid).

    Partial volumes mix the tissues' signals linearly, so all channels are one (channels x tissues) matrix
    times the fractions; only gadolinium, which varies within the enhancing tissue, is added voxel by voxel.
    """
    device = frac.device
    base_t1 = torch.tensor([t.t1_ms for t in TISSUES], device=device)
    base_t2 = torch.tensor([t.t2_ms for t in TISSUES], device=device)
    for name, (f1, f2) in params.relaxation_jitter.items():
        base_t1[TISSUE_INDEX[name]] *= f1
        base_t2[TISSUE_INDEX[name]] *= f2
    pd = torch.tensor([t.pd for t in TISSUES], device=device)
    t1_csf = float(base_t1[_CSF])
    rows, gadolinium = [], None
    for k, name in enumerate(names):
        if name == "ct":
            rows.append(torch.tensor([t.hu for t in TISSUES], device=device))
            continue
        seq = SEQUENCES[name]
        ti = flair_null_ti(seq, t1_csf) if seq.kind == "flair" else 0.0
        ref = float(signal(seq, base_t1[:1] / params.relaxation_jitter["white_matter"][0], base_t2[:1], pd[:1], ti))
        rows.append(signal(seq, base_t1, base_t2, pd, ti) / ref * WM_REFERENCE)
        if name == "t1ce" and params.tumour is not None and params.tumour.enhancing:
            gadolinium = (k, seq, ref)
    values = torch.matmul(torch.stack(rows), frac.view(_N_TISSUES, -1)).view(len(names), *frac.shape[1:])
    if gadolinium is not None:
        k, seq, ref = gadolinium
        box = _support(frac[_ET])
        if box is not None:
            noise = fine.field(FourierField(params.tumour.shape_seed + 1, wavelength_mm=10.0), 10.0, box)[0]
            conc = params.tumour.gadolinium_mM * torch.clamp(1.0 + 0.3 * noise, min=0.2)
            t1_post = 1.0 / (1.0 / base_t1[_ET] + GADOLINIUM_R1_PER_MM_S * conc / 1000.0)
            s_post = signal(seq, t1_post, base_t2[_ET].expand_as(t1_post), pd[_ET].expand_as(t1_post))
            s_pre = signal(seq, base_t1[_ET : _ET + 1], base_t2[_ET : _ET + 1], pd[_ET : _ET + 1])
            values[(k, *box)].addcmul_(frac[(_ET, *box)], (s_post - s_pre) * (WM_REFERENCE / ref))
    return values


def _support(fraction: torch.Tensor) -> tuple[slice, slice, slice] | None:
    """The bounding box of the voxels where ``fraction`` exceeds ``_ENHANCING_FLOOR`` (None when there are none)."""
    return _box(fraction > _ENHANCING_FLOOR)


def _box(present: torch.Tensor) -> tuple[slice, slice, slice] | None:
    """The bounding box of the true voxels of ``present`` (None when there are none)."""
    box = []
    for axis in range(3):
        hit = torch.nonzero(present.any(dim=tuple(a for a in range(3) if a != axis))).flatten()
        if hit.numel() == 0:
            return None
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)
