"""The input of a progression: one case's channels on one grid, and its tissue classes found in its own images.

The growth and atrophy models need white matter, grey matter and CSF of *this* case. Neither a phantom case
nor a hospital scan carries a tissue map, so it is found from the case's T1 (or the first MR sequence it has):
three-class k-means on the brain's intensities after dividing out a smooth bias field, tumour voxels excluded,
ordered by T1 brightness
(CSF < GM < WM on T1; reversed on T2/FLAIR, where CSF is bright). Deep CSF (more than 12 mm inside the brain,
as the phantom's atlas defines it) is the ventricles.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from MedSynthLib.conventions import LABEL_CHANNEL

from ..data.layouts import find_case_files
from ..errors import MedSynthError
from ..nifti_io import read_nifti

__all__ = ["Case", "read_case", "tissue_classes", "BACKGROUND", "CSF", "GM", "WM", "IMAGE_CHANNELS"]

BACKGROUND, CSF, GM, WM = 0, 1, 2, 3
IMAGE_CHANNELS = ("t1", "t1ce", "t2", "flair")
VENTRICLE_DEPTH_MM = 12.0
BIAS_SCALE_MM = 30.0


@dataclass
class Case:
    """A case's arrays by channel (as read: dtype kept), its RAS affine, and its seg (zeros if it had none)."""

    arrays: dict[str, np.ndarray]
    affine: np.ndarray
    seg: np.ndarray
    had_seg: bool

    @property
    def spacing(self) -> np.ndarray:
        return np.linalg.norm(self.affine[:3, :3], axis=0)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.seg.shape)


def read_case(folder: Path) -> Case:
    """Every channel of a BraTS-style case folder; MedSynthError (naming the file) if they do not share one grid."""
    _, files, _ = find_case_files(Path(folder))
    arrays: dict[str, np.ndarray] = {}
    affine = shape = None
    for channel, path in files.items():
        array, own = read_nifti(path)
        array = np.asarray(array)
        if array.ndim != 3:
            raise MedSynthError(f"{path} is not a 3D volume; a case holds one 3D volume per channel.")
        if affine is None:
            affine, shape = own, array.shape
        elif array.shape != shape or not np.allclose(own, affine, atol=1e-3):
            raise MedSynthError(f"{path} is not on the same grid as the case's other files; every channel must share one grid.")
        arrays[channel] = array
    if not any(c in arrays for c in IMAGE_CHANNELS):
        raise MedSynthError(f"The case {folder} has no t1, t1ce, t2 or flair image.")
    seg = arrays.pop(LABEL_CHANNEL, None)
    if seg is not None and not np.isin(np.unique(seg), (0, 1, 2, 3, 4)).all():
        raise MedSynthError(f"The seg file of {folder} holds labels other than the BraTS codes 0, 1, 2, 4.")
    codes = np.zeros(shape, np.uint8) if seg is None else seg.astype(np.uint8)
    codes[codes == 3] = 4
    return Case(arrays=arrays, affine=np.asarray(affine, dtype=float), seg=codes, had_seg=seg is not None)


def _kmeans_1d(values: np.ndarray, k: int = 3, iterations: int = 30) -> np.ndarray:
    centres = np.percentile(values, np.linspace(15, 85, k))
    for _ in range(iterations):
        labels = np.argmin(np.abs(values[:, None] - centres[None]), axis=1)
        new = np.array([values[labels == i].mean() if np.any(labels == i) else centres[i] for i in range(k)])
        if np.allclose(new, centres):
            break
        centres = new
    return np.argsort(np.argsort(centres))[np.argmin(np.abs(values[:, None] - centres[None]), axis=1)]


def _flatten_bias(image: np.ndarray, where: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Divide out a smooth multiplicative bias (the image's own local mean over ~30 mm): grey/white contrast is only
    ~20 % on T1, as large as a scanner's bias field, so a global threshold would otherwise split the brain by position."""
    sigma = BIAS_SCALE_MM / spacing
    weight = ndimage.gaussian_filter(where.astype(np.float32), sigma)
    local = ndimage.gaussian_filter(np.where(where, image, 0.0).astype(np.float32), sigma) / np.maximum(weight, 1e-3)
    return np.where(where, image / np.maximum(local, 1e-3), 0.0)


def tissue_classes(case: Case) -> np.ndarray:
    """uint8 map: 0 outside the brain, 1 CSF, 2 GM, 3 WM; tumour voxels take their class from intensity too."""
    channel = next(c for c in ("t1", "t1ce", "t2", "flair") if c in case.arrays)
    image = case.arrays[channel].astype(np.float32)
    brain = ndimage.binary_fill_holes(image > 0)
    if brain.sum() < 100:
        raise MedSynthError("The case shows too little brain (under 100 non-zero voxels) to find its tissues; give a skull-stripped MR case.")
    normal = brain & (case.seg == 0)
    rank = _kmeans_1d(_flatten_bias(image, normal, case.spacing)[normal])
    if channel in ("t2", "flair"):
        rank = 2 - rank  # CSF is bright there
    classes = np.zeros(case.shape, np.uint8)
    classes[normal] = rank + 1
    tumour = brain & (case.seg > 0)
    classes[tumour] = WM  # gliomas grow in white matter; the tumour's own tissue counts as such
    return classes


def ventricles(classes: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Deep CSF: CSF more than ``VENTRICLE_DEPTH_MM`` inside the brain."""
    depth = ndimage.distance_transform_edt(classes > 0, sampling=spacing)
    return (classes == CSF) & (depth > VENTRICLE_DEPTH_MM)
