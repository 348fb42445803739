"""Bring a case onto the model's grid and intensity scale (SimpleITK for geometry).

Steps, all recorded in the model card so generated volumes map back: reorient to RAS; resample to the
model's spacing (linear for images after a Gaussian anti-alias, nearest for labels); crop a box of the
model's shape centred on the head's bounding box (padding with background where the head is smaller);
scale each channel from its [low, high] percentiles to [-1, 1].
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import SimpleITK as sitk

from MedSynthLib.conventions import LABEL_CHANNEL

__all__ = ["PreprocessSpec", "preprocess_case", "crop_and_scale", "resample_to_spacing", "to_sitk", "LABEL_CODES", "one_hot", "NEW_MODEL_FOV_MM", "grid_affine"]

#: Side (mm) of a new generator's cubic field of view when no --spacing is given: a whole adult head.
NEW_MODEL_FOV_MM = 192.0
#: BraTS codes of the label classes, in network channel order (background, NCR, ED, ET).
LABEL_CODES = (0, 1, 2, 4)
_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0])


def grid_affine(shape: tuple[int, ...], spacing: tuple[float, ...]) -> np.ndarray:
    """RAS affine of a grid centred on the origin."""
    affine = np.diag([*map(float, spacing), 1.0])
    affine[:3, 3] = -(np.asarray(shape) - 1) / 2 * np.asarray(spacing, dtype=float)
    return affine


@dataclass
class PreprocessSpec:
    """The model's grid and the intensity scaling applied to training data."""

    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    low_percentile: float = 0.5
    high_percentile: float = 99.5
    foreground_fraction: float = 0.1

    def to_dict(self) -> dict:
        data = asdict(self)
        data.update(
            orientation="RAS",
            resample="SimpleITK: linear (images, Gaussian anti-alias when downsampling), nearest (labels)",
            crop="box of the model's shape centred on the bounding box of voxels above foreground_fraction of the high percentile",
            intensity="per channel and case: [low percentile of the whole volume, high percentile of the head] -> [-1, 1], clipped",
        )
        return data


def to_sitk(array: np.ndarray, affine: np.ndarray) -> sitk.Image:
    """A SimpleITK image (LPS physical space) from an (X, Y, Z) array and its NIfTI RAS affine."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(array).transpose(2, 1, 0)))
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    direction = _RAS_TO_LPS @ (affine[:3, :3] / spacing)
    image.SetSpacing([float(s) for s in spacing])
    image.SetDirection([float(v) for v in direction.ravel()])
    image.SetOrigin([float(v) for v in _RAS_TO_LPS @ affine[:3, 3]])
    return image


def resample_to_spacing(image: sitk.Image, spacing: tuple[float, ...], label: bool) -> sitk.Image:
    """``image`` on ``spacing`` over the same extent: intensities Gaussian-smoothed first where the new voxels are
    coarser (FWHM of the spacing gained, so no aliasing) and interpolated linearly; labels by nearest neighbour.
    Every path that reads cases (training, 2D slicing, channel models) resamples through it, so they agree."""
    old = np.array(image.GetSpacing())
    new = np.array(spacing, dtype=float)
    size = [max(1, int(round(n))) for n in np.array(image.GetSize()) * old / new]
    if not label:
        image = sitk.Cast(image, sitk.sitkFloat32)
        sigma = np.sqrt(np.clip(new**2 - old**2, 0.0, None)) / 2.355
        if np.any(sigma > 0.1 * old):
            image = sitk.SmoothingRecursiveGaussian(image, [float(max(s, 1e-3)) for s in sigma])
    return sitk.Resample(
        image,
        size,
        sitk.Transform(),
        sitk.sitkNearestNeighbor if label else sitk.sitkLinear,
        image.GetOrigin(),
        [float(s) for s in new],
        image.GetDirection(),
        0.0,
        image.GetPixelID(),
    )


def _crop_box(mask: np.ndarray, shape: tuple[int, int, int]) -> list[tuple[int, int]]:
    """Start/stop (may run past the array: padded) of a ``shape`` box centred on the mask's bounding box."""
    if mask.any():
        idx = np.nonzero(mask)
        centre = [(int(i.min()) + int(i.max()) + 1) / 2 for i in idx]
    else:
        centre = [s / 2 for s in mask.shape]
    starts = [int(round(c - s / 2)) for c, s in zip(centre, shape, strict=True)]
    return [(a, a + s) for a, s in zip(starts, shape, strict=True)]


def _take(array: np.ndarray, box: list[tuple[int, int]], fill: float) -> np.ndarray:
    out = np.full(tuple(b - a for a, b in box), fill, dtype=array.dtype)
    src = tuple(slice(max(a, 0), min(b, n)) for (a, b), n in zip(box, array.shape, strict=True))
    dst = tuple(slice(max(a, 0) - a, max(a, 0) - a + (s.stop - s.start)) for (a, _), s in zip(box, src, strict=True))
    if all(s.stop > s.start for s in src):
        out[dst] = array[src]
    return out


def one_hot(seg: np.ndarray) -> np.ndarray:
    """(4, X, Y, Z) float32 one-hot of a BraTS label map over background, NCR, ED, ET."""
    return np.stack([(seg == code) for code in LABEL_CODES]).astype(np.float32)


def preprocess_case(
    arrays: dict[str, np.ndarray], affine: np.ndarray, spec: PreprocessSpec
) -> tuple[dict[str, np.ndarray], dict[str, tuple[float, float]]]:
    """A validated case on the model's grid: images in [-1, 1], labels as BraTS codes; plus each image's (low, high)."""
    oriented: dict[str, np.ndarray] = {}
    for channel, array in arrays.items():
        label = channel == LABEL_CHANNEL
        image = to_sitk(array.astype(np.uint8 if label else np.float32), affine)
        image = resample_to_spacing(sitk.DICOMOrient(image, "RAS"), spec.spacing, label)
        resampled = sitk.GetArrayFromImage(image).transpose(2, 1, 0)
        if not label:  # the recursive Gaussian overshoots slightly; smoothing cannot leave the input's range
            resampled = np.clip(resampled, float(array.min()), float(array.max()))
        oriented[channel] = resampled
    return crop_and_scale(oriented, spec)


def crop_and_scale(oriented: dict[str, np.ndarray], spec: PreprocessSpec) -> tuple[dict[str, np.ndarray], dict[str, tuple[float, float]]]:
    """Arrays already on the spec's spacing (volumes, or 2D slices with a 2D spec) -> the spec's box, images in [-1, 1]."""
    images = [c for c in oriented if c != LABEL_CHANNEL]
    highs = {c: float(np.percentile(oriented[c], spec.high_percentile)) for c in images}
    mask = np.zeros(next(iter(oriented.values())).shape, dtype=bool)
    for c in images:
        mask |= oriented[c] > spec.foreground_fraction * highs[c]
    box = _crop_box(mask, spec.shape)
    out: dict[str, np.ndarray] = {}
    scale: dict[str, tuple[float, float]] = {}
    for channel, array in oriented.items():
        if channel == LABEL_CHANNEL:
            out[channel] = _take(array, box, 0)
            continue
        low = float(np.percentile(array, spec.low_percentile))
        head = array[mask] if mask.any() else array
        high = float(np.percentile(head, spec.high_percentile))
        if high <= low:
            high = low + 1.0
        cropped = _take(array.astype(np.float32), box, low)
        out[channel] = (np.clip((cropped - low) / (high - low), 0.0, 1.0) * 2.0 - 1.0).astype(np.float32)
        scale[channel] = (low, high)
    return out, scale
