"""The one check every NIfTI a user brings passes before MedSynth uses it.

Every reader (finetune's data, add-channel, add-tumour, audit, evaluate, export's source, prepare's NIfTI
path, engine jobs) reads through ``nifti_io.read_nifti``, which calls these checks in order:

1. ``check_file``: the path is a regular file (a symlink is followed), not a folder, device or pipe;
2. ``check_header``: from the header alone, before any voxel is read or allocated: a NIfTI image, 3D (or 4D
   with one volume), a real numeric data type (no complex, RGB, structured or 1-bit binary), a sane size,
   positive finite voxel sizes and a finite, non-singular affine; an uncompressed file holds every voxel it declares;
3. ``check_values``: every voxel is finite (after the header's scaling);
4. ``check_same_grid``: files of one case share a shape and an affine.

Each failure is a ``MedSynthError`` whose one sentence names the file and the problem.
"""

from __future__ import annotations

import stat
from pathlib import Path

import nibabel as nib
import numpy as np
from isal import igzip

from .errors import MedSynthError

__all__ = ["check_file", "check_header", "check_values", "declared_bytes", "check_same_grid", "MAX_SIDE", "MAX_VOXELS", "AFFINE_TOLERANCE_MM"]

#: Larger than any scanner's matrix (1024) with room to spare; a header declaring more is damaged or hostile.
MAX_SIDE = 2048
#: 2^28 voxels: 1 GiB as float32, several times a 0.5 mm whole-head scan.
MAX_VOXELS = 1 << 28
AFFINE_TOLERANCE_MM = 1e-3
#: NIfTI data type codes with no single real value per voxel: binary (1), complex (32, 1792, 2048), RGB(A) (128, 2304).
_NOT_REAL = {1: "1-bit binary", 32: "complex", 1792: "complex", 2048: "complex", 128: "RGB", 2304: "RGBA"}
_ALLOWED_KINDS = "iuf"


def check_file(path: Path) -> Path:
    """``path`` if it is an existing regular file (links followed); a folder, device, pipe or missing file is refused."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise MedSynthError(f"{path} does not exist.") from None
    except OSError as exc:
        raise MedSynthError(f"{path} cannot be read ({exc.strerror or exc.__class__.__name__}).") from None
    if stat.S_ISDIR(mode):
        raise MedSynthError(f"{path} is a folder, not a file; give a NIfTI file (.nii or .nii.gz).")
    if not stat.S_ISREG(mode):
        raise MedSynthError(f"{path} is not a regular file (a device, pipe or socket); give a NIfTI file (.nii or .nii.gz).")
    return path


def check_header(path: Path, image: object) -> tuple[int, ...]:
    """Check what the header of ``image`` (loaded from ``path``, voxels not yet read) declares; returns the 3D shape."""
    if not isinstance(image, (nib.Nifti1Image, nib.Nifti2Image)):
        raise MedSynthError(f"{path} is not a NIfTI image.")
    header = image.header
    code = int(header["datatype"])
    if code in _NOT_REAL:
        raise MedSynthError(f"{path} holds {_NOT_REAL[code]} voxels; an image needs one real number (integer or float) per voxel.")
    dtype = header.get_data_dtype()
    if dtype.names is not None or dtype.kind not in _ALLOWED_KINDS:
        raise MedSynthError(f"{path} has voxel type {dtype}; an image needs one real number (integer or float) per voxel.")
    shape = tuple(int(s) for s in image.shape)
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) != 3:
        extra = f" with {shape[3]} volumes" if len(shape) == 4 else ""
        raise MedSynthError(f"{path} holds a {len(shape)}D image{extra}; a 3D volume is needed.")
    if min(shape) < 1:
        raise MedSynthError(f"{path} declares an empty image of shape {shape}.")
    if max(shape) > MAX_SIDE or int(np.prod(shape, dtype=np.int64)) > MAX_VOXELS:
        raise MedSynthError(
            f"{path} declares {'x'.join(map(str, shape))} voxels, more than MedSynth reads "
            f"(at most {MAX_SIDE} per side and {MAX_VOXELS:,} in all); the header is damaged or the image is not a scan."
        )
    zooms = np.asarray(_as_written(path, header)["pixdim"][1:4], dtype=np.float64)
    if not np.isfinite(zooms).all() or (zooms <= 0).any():
        raise MedSynthError(f"{path} declares voxel sizes {tuple(float(z) for z in zooms)}; every voxel size must be a positive number.")
    affine = np.asarray(image.affine, dtype=np.float64)
    if not np.isfinite(affine).all():
        raise MedSynthError(f"{path} has an affine with NaN or infinite entries (no usable geometry).")
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    if (spacing < 1e-6).any() or abs(float(np.linalg.det(affine[:3, :3]))) < 1e-9 * float(np.prod(spacing)):
        raise MedSynthError(f"{path} has a singular affine (zero or collinear voxel axes), so it has no usable geometry.")
    if not str(path).endswith(".gz"):
        needed = declared_bytes(image, shape)
        size = Path(path).stat().st_size
        if size < needed:
            raise MedSynthError(f"{path} is truncated: its header declares {needed:,} bytes but the file has {size:,}.")
    return shape


def declared_bytes(image: nib.Nifti1Image, shape: tuple[int, ...]) -> int:
    """How many bytes the file of ``image`` must hold: the header (with extensions) and every voxel it declares."""
    return int(image.dataobj.offset) + int(np.prod(shape, dtype=np.int64)) * image.header.get_data_dtype().itemsize


def _as_written(path: Path, header: nib.Nifti1Header) -> nib.Nifti1Header:
    """The header as the file holds it: nibabel silently repairs zero or negative voxel sizes, other tools do not."""
    size = type(header).template_dtype.itemsize
    with (igzip.open(path, "rb") if str(path).endswith(".gz") else open(path, "rb")) as handle:
        block = handle.read(size)
    return type(header)(block, endianness=header.endianness, check=False)


def check_values(path: Path, array: np.ndarray) -> None:
    """Refuse NaN or infinite voxels (a float image, or an integer one the header scales)."""
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        raise MedSynthError(f"{path} contains NaN or infinite values.")


def check_same_grid(path: Path, shape: tuple[int, ...], affine: np.ndarray, reference: Path, ref_shape: tuple[int, ...],
                    ref_affine: np.ndarray) -> None:
    """Refuse a file of a case whose grid (shape or affine) differs from the case's first file."""
    if tuple(shape) != tuple(ref_shape):
        raise MedSynthError(f"{path} has shape {tuple(shape)} but {Path(reference).name} of the same case has {tuple(ref_shape)}; "
                            "resample the case's files onto one grid first.")
    if not np.allclose(affine, ref_affine, atol=AFFINE_TOLERANCE_MM):
        raise MedSynthError(f"{path} is not on the same grid (affine) as {Path(reference).name} of the same case; "
                            "resample the case's files onto one grid first.")
