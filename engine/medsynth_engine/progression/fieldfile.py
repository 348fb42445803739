"""A displacement field as one anonymised NIfTI: shape (X, Y, Z, 1, 3), intent VECTOR, RAS millimetres.

That is the layout ITK and 3D Slicer read as a vector image (one vector per voxel). The header is the same
anonymised one ``nifti_io`` writes for volumes (geometry and data type only), written through a temporary name.
"""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
from isal import igzip

from ..nifti_io import COMPRESS_LEVEL, anonymous_image

__all__ = ["write_vector_field"]


def write_vector_field(path: Path, field: np.ndarray, affine: np.ndarray) -> None:
    """Write ``field`` (X, Y, Z, 3) as a vector NIfTI at ``path`` (``.nii.gz``)."""
    header = anonymous_image(np.ascontiguousarray(field[..., 0]), affine).header.copy()
    data = np.ascontiguousarray(field[:, :, :, None, :].astype(np.float32))
    header.set_data_dtype(np.float32)
    header.set_data_shape(data.shape)
    header.set_intent("vector", (), name="")
    image = nib.Nifti1Image(data, np.asarray(affine, dtype=np.float64), header=header)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    raw = igzip.compress(image.to_bytes(), compresslevel=COMPRESS_LEVEL, mtime=0)
    tmp = Path(path).with_name(f".{Path(path).name}.partial")
    try:
        tmp.write_bytes(raw)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
