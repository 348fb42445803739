"""Tumour masks drawn by a user: read, validated and brought onto a model's grid (shared by add-tumour and every
mask-conditioned model family, so no family imports another's code through add-tumour)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from scipy import ndimage

from .errors import MedSynthError
from .nifti_io import read_nifti

__all__ = ["load_mask", "resample_to_grid"]


def resample_to_grid(array: np.ndarray, source_affine: np.ndarray, shape: tuple[int, ...], target_affine: np.ndarray, *, order: int, cval: float = 0.0, mode: str = "constant") -> np.ndarray:
    """``array`` (on ``source_affine``) sampled at every voxel of the ``shape``/``target_affine`` grid."""
    if tuple(array.shape) == tuple(shape) and np.allclose(source_affine, target_affine, atol=1e-4):
        return array
    matrix = np.linalg.inv(source_affine) @ target_affine
    return ndimage.affine_transform(array, matrix[:3, :3], offset=matrix[:3, 3], output_shape=tuple(shape), order=order, mode=mode, cval=cval)


def load_mask(path: Path, reference: Any) -> np.ndarray:
    """The mask at ``path`` on the reference grid as uint8 BraTS codes (0, 1, 2, 4), validated.

    ``reference`` is a nibabel image or ``(shape, affine)``. Another grid is resampled with nearest neighbour;
    refused in one sentence: corrupt or non-3D files, NaNs, labels other than 0-4, fractional labels, and a
    mask with no label voxel (before or after resampling).
    """
    path = Path(path)
    if isinstance(reference, nib.spatialimages.SpatialImage):
        shape, affine = tuple(reference.shape[:3]), reference.affine
    else:
        shape, affine = tuple(reference[0]), np.asarray(reference[1], dtype=float)
    array, mask_affine = read_nifti(path)
    values = np.asarray(array)
    if np.issubdtype(values.dtype, np.floating):
        if not np.all(values == np.round(values)):
            raise MedSynthError(f"The mask {path} has fractional values; a label map holds whole BraTS codes 0-4.")
    labels = np.unique(values)
    wrong = [v for v in labels.tolist() if v not in (0, 1, 2, 3, 4)]
    if wrong:
        shown = ", ".join(f"{v:g}" for v in wrong[:5])
        raise MedSynthError(f"The mask {path} has label(s) {shown}; use BraTS codes 1 (necrosis), 2 (oedema), 3 or 4 (enhancing).")
    codes = values.astype(np.uint8)
    codes[codes == 3] = 4
    if not codes.any():
        raise MedSynthError(f"The mask {path} is empty: it has no tumour voxel (codes 1, 2, 3 or 4).")
    codes = resample_to_grid(codes, mask_affine, shape, affine, order=0).astype(np.uint8)
    if not codes.any():
        raise MedSynthError(f"The mask {path} lies outside the volume it is meant for (nothing of it remains on that grid).")
    return codes
