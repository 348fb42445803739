"""Drawn tumours: validated masks, a tumour structure from a drawn outline, and adding a tumour to an existing scan.

``add_tumour`` works on any case grid. A region of the case around its head is resampled onto the model's
grid (axis-aligned RAS at the model's spacing, Gaussian anti-aliasing when coarser), scaled per channel to
[-1, 1] from the case's own percentiles, inpainted in latent space (``LDM3DModel.inpaint``: RePaint-style,
the mask as the condition), mapped back to the case's intensities, resampled back to the case grid only
inside the mask dilated by ``margin_mm``, matched to the surrounding tissue by a per-channel offset in the
margin band, and blended with a cosine feather that is 1 inside the mask and 0 at ``margin_mm``. Every voxel
farther than ``margin_mm`` from the mask keeps the input file's value exactly. The output case gets a seg
channel: the mask, merged over the case's own seg if it had one. A brain mask beside the case (``<case>_mask``, as
``medsynth prepare`` writes it) is copied unchanged, so the new case keeps it for ``add-channel``.

Label codes: masks may use BraTS codes 1 (necrotic core), 2 (oedema), 3 or 4 (enhancing); 3 is read as 4,
the BraTS 2021 code every MedSynth seg file uses (``MedSynthLib.conventions.BRATS_LABELS``).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from MedSynthLib.conventions import LABEL_CHANNEL

from .addchannel import find_brain_mask
from .data.layouts import find_case_files
from .errors import MedSynthError
from .inputcheck import check_same_grid
from .killpoint import killpoint
from .masks import load_mask
from .masks import resample_to_grid as _resample
from .nifti_io import read_nifti, write_nifti

__all__ = [
    "DEFAULT_TUMOUR_MODEL",
    "AddTumourRequest",
    "add_tumour",
    "is_free_output",
    "structure_from_outline",
    "inpaint_tumour",
    "tumour_model",
    "load_mask",
    "MAX_MARGIN_MM",
]

DEFAULT_TUMOUR_MODEL = "ldm3d-phantom"
MAX_MARGIN_MM = 50.0
#: A mask is refused when less than this share of its voxels lies inside the case's head.
MIN_INSIDE_HEAD = 0.5
IMAGE_CHANNELS = ("t1", "t1ce", "t2", "flair")


@dataclass
class AddTumourRequest:
    """Everything ``medsynth add-tumour`` takes."""

    case: Path  # BraTS-style case folder (<case>/<case>_t1.nii.gz ...) or one NIfTI file
    mask: Path  # NIfTI label map, BraTS codes (1, 2, 3; 4 read as 3); any grid (resampled to the case, nearest)
    out: Path  # folder to write the new case into (new or empty; never the input folder)
    model: str = DEFAULT_TUMOUR_MODEL
    seed: int = 0
    margin_mm: float = 8.0
    steps: int | None = None
    device: str | None = None

    def validate(self) -> None:
        self.case, self.mask, self.out = Path(self.case), Path(self.mask), Path(self.out)
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**62:
            raise MedSynthError(f"The seed must be a non-negative whole number, not {self.seed}.")
        if not 0.0 < float(self.margin_mm) <= MAX_MARGIN_MM:
            raise MedSynthError(f"The margin must be more than 0 and at most {MAX_MARGIN_MM:g} mm, not {self.margin_mm}.")
        if self.steps is not None and (not isinstance(self.steps, int) or not 1 <= self.steps <= 1000):
            raise MedSynthError(f"The number of sampling steps must be 1 to 1000, not {self.steps}.")


# --- masks ------------------------------------------------------------------------------------------
def _spacing(affine: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.asarray(affine)[:3, :3], axis=0)


def structure_from_outline(outline: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    """A drawn blob -> a BraTS-coded tumour: necrotic core (1) inside an enhancing rim (4), oedema (2) around it.

    The core is the blob's inner half by depth (distance to its surface, in mm); the oedema shell reaches out
    half the blob's equivalent radius (4-15 mm). For panels where the user draws one segment.
    """
    blob = np.asarray(outline).astype(bool)
    if blob.ndim != 3:
        raise MedSynthError(f"The outline must be a 3D volume, not an array of shape {blob.shape}.")
    if not blob.any():
        raise MedSynthError("The outline is empty; draw the tumour first.")
    spacing = tuple(float(s) for s in spacing)
    depth = ndimage.distance_transform_edt(np.pad(blob, 1), sampling=spacing)[1:-1, 1:-1, 1:-1]
    codes = np.zeros(blob.shape, dtype=np.uint8)
    codes[blob] = 4
    codes[blob & (depth >= 0.5 * depth.max())] = 1
    radius = (3.0 * blob.sum() * float(np.prod(spacing)) / (4.0 * np.pi)) ** (1.0 / 3.0)
    shell = float(np.clip(radius / 2.0, 4.0, 15.0))
    outside = ndimage.distance_transform_edt(~blob, sampling=spacing)
    codes[~blob & (outside <= shell)] = 2
    return codes


# --- cases ------------------------------------------------------------------------------------------
def _check_out(out: Path, case: Path) -> None:
    out_abs, case_abs = out.absolute().resolve(), case.absolute().resolve()
    folder = case_abs if case_abs.is_dir() else case_abs.parent
    if out_abs == folder or (case_abs.is_dir() and folder in out_abs.parents):
        raise MedSynthError(f"The output folder {out} is the input case's folder; choose a new or empty folder.")
    if not is_free_output(out):
        raise MedSynthError(f"{out} is not empty; choose a new or empty output folder.")


def is_free_output(out: Path) -> bool:
    """``out`` is absent, or a folder holding nothing but hidden ``.<case>.partial`` folders of runs that were killed
    before their rename (``_write_case`` replaces them): the command and the engine's job accept the same folders."""
    if not out.exists():
        return True
    return out.is_dir() and all(p.name.startswith(".") and p.name.endswith(".partial") and p.is_dir() for p in out.iterdir())


def check_inside_head(mask: np.ndarray, images: dict[str, np.ndarray], where: str) -> np.ndarray:
    """The head of ``images``; refuses a tumour mask with less than MIN_INSIDE_HEAD of its voxels inside it."""
    head = _head(images)
    inside = float(head[mask > 0].mean())
    if inside < MIN_INSIDE_HEAD:
        raise MedSynthError(f"The mask lies mostly outside {where} ({1 - inside:.0%} of its voxels); draw it inside the brain.")
    return head


def _head(arrays: dict[str, np.ndarray]) -> np.ndarray:
    """Voxels of the head: above a tenth of any sequence's 99.5th percentile, holes filled."""
    head = np.zeros(next(iter(arrays.values())).shape, dtype=bool)
    for array in arrays.values():
        high = float(np.percentile(array, 99.5))
        low = float(np.percentile(array, 0.5))
        head |= array > low + 0.1 * (high - low)
    return ndimage.binary_fill_holes(ndimage.binary_closing(head, iterations=2))


def _model_grid(head: np.ndarray, mask: np.ndarray, affine: np.ndarray, resolution: int, spacing: float, margin: float) -> np.ndarray:
    """RAS affine of the model's grid: centred on the head, shifted (if needed) to hold the mask and its margin."""
    def world_box(where: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        idx = np.argwhere(where)
        corners = np.array([[a, b, c] for a in (0, 1) for b in (0, 1) for c in (0, 1)])
        lo, hi = idx.min(0), idx.max(0)
        points = lo + corners * (hi - lo)
        world = (affine[:3, :3] @ points.T).T + affine[:3, 3]
        return world.min(0), world.max(0)

    head_lo, head_hi = world_box(head)
    mask_lo, mask_hi = world_box(mask > 0)
    half = (resolution - 1) / 2 * spacing - 2 * spacing
    mask_lo, mask_hi = mask_lo - margin, mask_hi + margin
    if np.any(mask_hi - mask_lo > 2 * half):
        raise MedSynthError(f"The mask and its margin are larger than the model's field of view ({resolution * spacing:g} mm); draw a smaller tumour or lower --margin-mm.")
    centre = np.clip((head_lo + head_hi) / 2, mask_hi - half, mask_lo + half)
    grid = np.diag([spacing, spacing, spacing, 1.0])
    grid[:3, 3] = centre - (resolution - 1) / 2 * spacing
    return grid


def _to_model(array: np.ndarray, affine: np.ndarray, grid: np.ndarray, resolution: int, spacing: float) -> np.ndarray:
    """An image resampled onto the model grid, linear, with a Gaussian anti-alias where the grid is coarser."""
    own = _spacing(affine)
    sigma = np.sqrt(np.clip(spacing**2 - own**2, 0.0, None)) / 2.355 / own
    data = array.astype(np.float32)
    if np.any(sigma > 0.1):
        data = ndimage.gaussian_filter(data, sigma)
    background = float(np.percentile(array, 0.5))
    return _resample(data, affine, (resolution,) * 3, grid, order=1, cval=background).astype(np.float32)


def _scale(volume: np.ndarray) -> tuple[float, float]:
    """The case's own (low, high) for a channel on the model grid, as training data were scaled."""
    low = float(np.percentile(volume, 0.5))
    high_all = float(np.percentile(volume, 99.5))
    head = volume[volume > low + 0.1 * (high_all - low)]
    high = float(np.percentile(head, 99.5)) if head.size else high_all
    return low, max(high, low + 1e-3)


def _cast(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


def add_tumour(request: AddTumourRequest, progress: Callable[[float, str], None] | None = None) -> dict:
    """Add the tumour drawn in ``request.mask`` to the case; returns what was written (see the module docstring)."""
    from .device import select_device

    def tell(fraction: float, message: str) -> None:
        if progress:
            progress(float(fraction), message)

    request.validate()
    name, files, folder = find_case_files(Path(request.case))
    brain_mask = find_brain_mask(name, folder) if Path(request.case).is_dir() else None
    _check_out(request.out, request.case)
    arrays: dict[str, np.ndarray] = {}
    affine = None
    for channel, path in files.items():
        array, own = read_nifti(path)
        if affine is None:
            affine, shape, first = own, array.shape, path
        else:
            check_same_grid(path, array.shape, own, first, shape, affine)
        arrays[channel] = np.asarray(array)
    images = {c: arrays[c] for c in IMAGE_CHANNELS if c in arrays}
    if not images:
        raise MedSynthError(f"The case {request.case} has no t1, t1ce, t2 or flair image to add a tumour to.")
    mask = load_mask(request.mask, (shape, affine))
    check_inside_head(mask, images, f"the head of {request.case}")

    tell(0.05, "loading the model")
    plugin = tumour_model(request.model)
    written, changed = inpaint_tumour(
        arrays, affine, mask, plugin, seed=request.seed, margin_mm=float(request.margin_mm), steps=request.steps,
        device=select_device(request.device), progress=tell,
    )
    margin = float(request.margin_mm)
    tell(0.9, "writing the case")
    paths = _write_case(request.out, name, written, affine, copies=[brain_mask] if brain_mask else [])
    tell(1.0, "done")
    return {
        "case": str((request.out / name).absolute()),
        "written": [str(p) for p in paths],
        "changed_voxels": int(changed.sum()),
        "margin_mm": margin,
    }


def tumour_model(model: str):
    """The registry's plugin for ``model``; MedSynthError unless it can inpaint (add tumours)."""
    from .registry import default_registry

    plugin = default_registry().generator(model)
    if plugin.family is None or not plugin.family.capabilities.inpaint:
        raise MedSynthError(f"Model '{model}' cannot add tumours; use an ldm3d model such as {DEFAULT_TUMOUR_MODEL}.")
    return plugin


def inpaint_tumour(
    arrays: dict[str, np.ndarray], affine: np.ndarray, mask: np.ndarray, plugin, *, seed: int, margin_mm: float,
    steps: int | None, device, progress: Callable[[float, str], None] | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The case's channels (and seg) with the tumour ``mask`` (BraTS codes, on the case grid) inpainted by ``plugin``;
    returns them and the voxels that changed. Nothing farther than ``margin_mm`` from the mask changes."""

    def tell(fraction: float, message: str) -> None:
        if progress:
            progress(float(fraction), message)

    images = {c: arrays[c] for c in IMAGE_CHANNELS if c in arrays}
    head = _head(images)
    shape = mask.shape
    config = plugin.config
    model_channels = list(config.image_channels)
    usable = [c for c in model_channels if c in images]
    if not usable:
        raise MedSynthError(f"The case has none of the sequences model '{plugin.id}' draws ({', '.join(model_channels)}).")
    resolution, spacing = int(config.resolution), float(plugin.card.spacing[0])
    margin = float(margin_mm)

    tell(0.1, "resampling the region onto the model grid")
    grid = _model_grid(head, mask, affine, resolution, spacing, margin)
    cube = (resolution,) * 3
    scaled: dict[str, np.ndarray] = {}
    scales: dict[str, tuple[float, float]] = {}
    for channel in usable:
        volume = _to_model(images[channel], affine, grid, resolution, spacing)
        low, high = _scale(volume)
        scales[channel] = (low, high)
        scaled[channel] = np.clip((volume - low) / (high - low), 0.0, 1.0) * 2.0 - 1.0
    filler = np.mean([scaled[c] for c in usable], axis=0)
    network = [scaled.get(c, filler) for c in model_channels]
    old_seg = arrays.get(LABEL_CHANNEL)
    old_codes = np.zeros(cube, dtype=np.uint8) if old_seg is None else _resample(old_seg.astype(np.uint8), affine, cube, grid, order=0)
    new_codes = _resample(mask, affine, cube, grid, order=0)
    if config.labels:
        from .models.ldm3d.network import codes_to_network

        network.extend(codes_to_network(old_codes))
    merged_model = np.where(new_codes > 0, new_codes, old_codes).astype(np.uint8)
    region = ndimage.binary_dilation(new_codes > 0, iterations=max(1, int(np.ceil(margin / spacing))))
    if not region.any():
        region = ndimage.binary_dilation(_resample((mask > 0).astype(np.uint8), affine, cube, grid, order=1) > 0, iterations=1)

    tell(0.25, "inpainting the tumour in latent space")
    generated = plugin.inpaint(np.stack(network), region, merged_model, seed=seed, steps=steps, device=device)

    tell(0.8, "blending into the case")
    lesion = mask > 0
    lo = np.maximum(np.argwhere(lesion).min(0) - np.ceil(margin / _spacing(affine)).astype(int) - 1, 0)
    hi = np.minimum(np.argwhere(lesion).max(0) + np.ceil(margin / _spacing(affine)).astype(int) + 2, np.array(shape))
    box = tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))
    distance = ndimage.distance_transform_edt(~lesion[box], sampling=_spacing(affine))
    weight = np.where(distance < margin, 0.5 * (1.0 + np.cos(np.pi * np.clip(distance / margin, 0.0, 1.0))), 0.0)
    weight[lesion[box]] = 1.0
    ring = (distance > 0) & (distance < margin)
    box_affine = affine.copy()
    box_affine[:3, 3] = affine[:3, :3] @ lo + affine[:3, 3]
    written: dict[str, np.ndarray] = dict(arrays)
    changed = np.zeros(shape, dtype=bool)
    for channel in usable:
        index = model_channels.index(channel)
        low, high = scales[channel]
        physical = (np.clip(generated[index], -1.0, 1.0) + 1.0) / 2.0 * (high - low) + low
        local = _resample(physical.astype(np.float32), grid, weight.shape, box_affine, order=1, mode="nearest")
        original = arrays[channel][box].astype(np.float64)
        if ring.sum() >= 10:  # match the generated level to the surrounding tissue
            # An offset only: the generated channel is already on the case's own intensity scale (its percentiles),
            # and a fitted slope is not a contrast estimate here. The 4 mm generated ring correlates with the
            # textured original by only 0.2-0.5, so least squares shrank the slope to 0.3-0.4 (clipped to 0.5)
            # and halved the new tumour's contrast in every sequence.
            local = local + float(np.mean(original[ring]) - np.mean(local[ring]))
        blended = original + weight * (local - original)
        out = arrays[channel].copy()
        touched = weight > 0
        out[box][touched] = _cast(blended[touched], arrays[channel].dtype)
        changed |= out != arrays[channel]
        written[channel] = out
    old = arrays.get(LABEL_CHANNEL)
    seg = mask.copy() if old is None else np.where(lesion, mask, old).astype(old.dtype)
    if old is not None:
        changed |= seg != old
    written[LABEL_CHANNEL] = seg
    return written, changed


def _write_case(out: Path, name: str, arrays: dict[str, np.ndarray], affine: np.ndarray, copies: list[Path]) -> list[Path]:
    """All channels, and ``copies`` as they are, into ``out/<name>`` through a temporary folder and a rename (nothing
    half-written)."""
    out.mkdir(parents=True, exist_ok=True)
    partial = out / f".{name}.partial"
    final = (out / name).absolute()
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        for channel, array in arrays.items():
            write_nifti(partial / f"{name}_{channel}.nii.gz", array, affine)
        for source in copies:
            shutil.copyfile(source, partial / source.name)
        killpoint("add-tumour.written")
        partial.rename(final)
    except PermissionError:
        shutil.rmtree(partial, ignore_errors=True)
        raise MedSynthError(f"Cannot write into {out}; choose an output folder you may write to.") from None
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return sorted([*(final / f"{name}_{channel}.nii.gz" for channel in arrays), *(final / source.name for source in copies)])
