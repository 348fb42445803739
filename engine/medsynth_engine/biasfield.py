"""N4 bias-field correction (Tustison et al. 2010, SimpleITK's filter), for ``medsynth prepare --n4`` and add-channel.

The field is fitted (``PASSES`` times, each on the last one's output) on a copy shrunk to about ``FIT_SPACING_MM``
per axis (SimpleITK's recommended recipe: the field is smooth, the fit costs the voxel count) and divided out at
full resolution. Shrinking per axis keeps thick
slices whole: a 1 mm axis is shrunk 4x, a 5 mm axis not at all, and no axis below ``MIN_FIT_VOXELS`` voxels.

Why add-channel runs it: the shipped seg model labels oedema where a healthy head's bias field is strongest; N4
on the input removes that (bench/results/add_channel.md, "N4 inside add-channel").
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

__all__ = ["FIT_SPACING_MM", "MIN_FIT_VOXELS", "n4_image", "n4_array", "shrink_factors"]

#: Spacing (mm) the field is fitted at: SimpleITK's 4x shrink of a 1 mm scan.
FIT_SPACING_MM = 4.0
#: No axis of the fitted copy has fewer voxels than this (the B-spline needs a few per control point).
MIN_FIT_VOXELS = 8
#: Fitting levels and iterations per level: three levels keep the B-spline mesh coarser than a tumour (a fourth
#: level fits bright tumour as "field": Dice 0.89 -> 0.38 at 3 mm); 50 iterations, not 25, finish the fit
#: (bench/results/add_channel.md, "N4 inside add-channel").
ITERATIONS = (50, 50, 50)
#: Fits in a row, each on the previous one's output (Otsu's foreground found anew on it when no mask is given): one
#: pass left 2.1 ml of false tumour in a healthy phantom head at 7 mm slices (100 iterations per level: 1.4 ml; a
#: second pass on the first pass's foreground: 1.1 ml), a second pass on its own foreground 0.06 ml (add_channel.md).
PASSES = 2


def shrink_factors(size: tuple[int, ...], spacing: tuple[float, ...]) -> list[int]:
    """Per-axis integer shrink that brings ``spacing`` near ``FIT_SPACING_MM`` and keeps ``MIN_FIT_VOXELS`` voxels."""
    factors = []
    for n, s in zip(size, spacing, strict=True):
        factor = max(1, int(round(FIT_SPACING_MM / max(float(s), 1e-6))))
        factors.append(max(1, min(factor, n // MIN_FIT_VOXELS)))
    return factors


def n4_image(image: sitk.Image, mask: sitk.Image | None = None) -> sitk.Image:
    """``image`` (float32) with its N4-estimated bias field divided out.

    ``mask`` (non-zero inside) is where the field is fitted; default Otsu's foreground (the head, not the air), found
    again for each pass on that pass's input.
    Voxels at or below zero are left out of the fit (N4 works on log intensities) and come back unchanged.
    Raises ``ValueError`` when there is nothing to fit (too small, or no positive voxel in the mask).
    """
    image = sitk.Cast(image, sitk.sitkFloat32)
    if min(image.GetSize()) < 4:
        raise ValueError(f"a {'x'.join(map(str, image.GetSize()))} volume is too small to estimate a bias field")
    positive = sitk.Cast(image > 0, sitk.sitkUInt8)
    given = None
    if mask is not None:
        given = sitk.Cast(mask != 0, sitk.sitkUInt8)
        given.CopyInformation(image)
    factors = shrink_factors(image.GetSize(), image.GetSpacing())
    corrected = image
    for _ in range(PASSES):
        mask = sitk.And(given if given is not None else sitk.OtsuThreshold(corrected, 0, 1, 200), positive)
        if not np.any(sitk.GetArrayViewFromImage(mask)):
            raise ValueError("no voxel above zero to estimate a bias field from")
        shrunk, shrunk_mask = sitk.Shrink(corrected, factors), sitk.Shrink(mask, factors)
        if not np.any(sitk.GetArrayViewFromImage(shrunk_mask)):  # a mask thinner than the shrink: fit at full size
            shrunk, shrunk_mask = corrected, mask
        corrector = sitk.N4BiasFieldCorrectionImageFilter()
        corrector.SetMaximumNumberOfIterations(list(ITERATIONS))
        corrector.Execute(shrunk, shrunk_mask)
        log_field = corrector.GetLogBiasFieldAsImage(corrected)
        corrected = sitk.Cast(corrected / sitk.Cast(sitk.Exp(log_field), sitk.sitkFloat32), sitk.sitkFloat32)
        corrected = sitk.Mask(corrected, positive, outsideValue=0) + sitk.Mask(image, sitk.Not(positive), outsideValue=0)
    return corrected


def _to_image(array: np.ndarray, affine: np.ndarray) -> sitk.Image:
    """``array`` (i, j, k as in NIfTI) as a SimpleITK image with the voxel spacing of ``affine`` (direction unused:
    the field is fitted on the voxel grid)."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.asarray(array, dtype=np.float32).transpose(2, 1, 0)))
    spacing = np.linalg.norm(np.asarray(affine, dtype=float)[:3, :3], axis=0)
    image.SetSpacing([float(s) for s in spacing])
    return image


def n4_array(array: np.ndarray, affine: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """:func:`n4_image` on a NIfTI-ordered array (float32 back, same shape); ``mask`` a boolean array like it."""
    image = _to_image(array, affine)
    fit_mask = None
    if mask is not None:
        fit_mask = _to_image(np.asarray(mask, dtype=np.float32), affine)
    corrected = n4_image(image, fit_mask)
    return np.ascontiguousarray(sitk.GetArrayFromImage(corrected).transpose(2, 1, 0))
