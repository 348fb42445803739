"""The input files of a job, checked when it is submitted, so a broken file is a 4xx naming it, not a failed job.

A single case (add-channel, add-tumour) is read whole (``nifti_io.read_nifti``: every check, voxels included); a set
(export's source, fine-tune data) has every NIfTI's header checked (``inputcheck``), which costs a few bytes per file
however large the set; what only the voxels show (a torn gzip stream, NaN) fails the job with the same sentence.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

__all__ = ["check_case_files", "check_headers", "nifti_files"]


def check_case_files(paths: Iterable[Path]) -> None:
    """Read every file of one case fully, and check that they share one grid; the first bad one raises its sentence."""
    from ..inputcheck import check_same_grid
    from ..nifti_io import read_nifti

    first = None
    for path in paths:
        array, affine = read_nifti(path)
        if first is None:
            first = (path, array.shape, affine)
        else:
            check_same_grid(path, array.shape, affine, first[0], first[1], first[2])


def check_headers(paths: Iterable[Path]) -> None:
    """Check every file's header (regular file, NIfTI, 3D, real numbers, sizes, affine) without reading voxels."""
    from ..nifti_io import read_header

    for path in paths:
        read_header(path)


def nifti_files(folder: Path) -> list[Path]:
    """Every NIfTI under ``folder`` (hidden folders aside), as a set's readers find them."""
    folder = Path(folder)
    return sorted(
        p for p in folder.rglob("*.nii*")
        if p.name.endswith((".nii", ".nii.gz")) and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )
