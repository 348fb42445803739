"""Does a tumour show? Its contrast against the same region of the other hemisphere, in head standard deviations.

For a label map of BraTS codes on an image's grid, the effect size of one tumour class (e.g. oedema, 2) is

    (mean intensity inside the class - mean intensity in the class's region mirrored left-right) / SD of the head

The mirrored region leaves out any tumour voxel (a lesion crossing the midline is not its own reference), and the
head is every voxel above 15% of the way from the 1st to the 99th intensity percentile, so air is left out
whatever its exact value: a generated or reconstructed volume has air near, not at, its minimum, and a
percentile threshold (e.g. "above the 60th percentile") would then count air as head and inflate the SD. The
measure is invariant to a linear rescaling of the image, so network-scale ([-1, 1]) and written (int16) volumes
of the same content give the same number. Axis 0 must be left-right (MedSynth's RAS grids).

It is how MedSynth checks that ldm3d draws what the mask says (bench/bench_ldm3d.py --contrast).
"""

from __future__ import annotations

import numpy as np

__all__ = ["head_mask", "tumour_contrast", "contrast_table", "CONTRAST_COLUMNS"]

#: The (sequence, BraTS code) pairs ``contrast_table`` reports: oedema (2) and enhancing tumour (4).
CONTRAST_COLUMNS = (("flair", 2), ("flair", 4), ("t2", 2), ("t2", 4), ("t1ce", 2), ("t1ce", 4))
HEAD_FRACTION = 0.15


def head_mask(image: np.ndarray) -> np.ndarray:
    low, high = np.percentile(image, [1.0, 99.0])
    return image > low + HEAD_FRACTION * (high - low)


def tumour_contrast(image: np.ndarray, codes: np.ndarray, code: int) -> float:
    """Effect size of BraTS class ``code`` in ``image`` (NaN when the class or its mirrored reference is empty)."""
    image = np.asarray(image, dtype=np.float64)
    codes = np.asarray(codes)
    if image.shape != codes.shape or image.ndim != 3:
        raise ValueError(f"image {image.shape} and label map {codes.shape} must be the same 3D grid")
    inside = codes == code
    reference = inside[::-1] & (codes == 0)
    head = head_mask(image)
    if not inside.any() or not reference.any() or head.sum() < 2:
        return float("nan")
    spread = image[head].std()
    if spread == 0:
        return float("nan")
    return float((image[inside].mean() - image[reference].mean()) / spread)


def contrast_table(arrays: dict[str, np.ndarray], codes: np.ndarray) -> list[float]:
    """``tumour_contrast`` for each of ``CONTRAST_COLUMNS`` (NaN for a sequence the case lacks)."""
    return [tumour_contrast(arrays[name], codes, code) if name in arrays else float("nan") for name, code in CONTRAST_COLUMNS]
