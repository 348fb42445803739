"""Drawn tumour outlines from the panel, turned into BraTS-coded tumour masks on the engine side.

The panel (Slicer's Segment Editor, the studio's sphere) gives one region: a binary mask. Generating from it or
adding it to a scan needs a tumour with structure (necrotic core, enhancing rim, oedema), which
``addtumour.structure_from_outline`` makes. It runs here, in the engine, so MedSynthLib stays free of torch and of
the engine package; jobs take ``outline: true`` to ask for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MedSynthError
from ..nifti_io import read_nifti, write_nifti

__all__ = ["outline_to_tumour"]


def outline_to_tumour(outline: Path, dest: Path) -> Path:
    """Write the BraTS-coded tumour grown from the drawn region in ``outline`` (any non-zero voxel) to ``dest``."""
    from ..addtumour import structure_from_outline

    array, affine = read_nifti(Path(outline))
    if array.ndim != 3:
        raise MedSynthError(f"The drawn tumour {outline} is not a 3D volume; draw it on the case's grid.")
    if not np.isfinite(array).all():
        raise MedSynthError(f"The drawn tumour {outline} holds NaN or infinite voxels; draw it again.")
    region = array != 0
    if not region.any():
        raise MedSynthError("The drawn tumour is empty; draw the tumour region first.")
    spacing = tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
    structured = np.asarray(structure_from_outline(region, spacing), dtype=np.uint8)
    if structured.shape != region.shape:
        raise MedSynthError("The tumour made from the outline does not match the outline's grid; this is a bug.")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    write_nifti(dest, structured, affine)
    return dest
