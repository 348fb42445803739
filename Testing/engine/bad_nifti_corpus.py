"""A corpus of broken NIfTI files, generated (never committed as binaries), for the bad-input tests.

Each entry writes one bad object at the path of a case's T1 file, made from that file's good array and
affine: damaged bytes, headers that lie, types that are not images, geometry that is not geometry, voxels
that are not numbers, things that are not files, and files that do not match the rest of their case.

Run as a script to write the corpus into a folder (one ``<entry>_t1.nii.gz`` per entry from a small volume):

    python Testing/engine/bad_nifti_corpus.py OUT_DIR
"""

from __future__ import annotations

import gzip
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np

__all__ = ["BadFile", "CORPUS", "write_corpus"]

Writer = Callable[[Path, np.ndarray, np.ndarray], None]


@dataclass(frozen=True)
class BadFile:
    """One broken input: ``write(path, good_array, good_affine)`` puts it at ``path`` (a ``.nii.gz`` name)."""

    name: str
    write: Writer


def _image(array: np.ndarray, affine: np.ndarray, cls: type = nib.Nifti1Image) -> nib.spatialimages.SpatialImage:
    image = cls(array, affine)
    image.set_sform(affine, code=1)
    image.set_qform(affine, code=1)
    return image


def _save(path: Path, image: nib.spatialimages.SpatialImage) -> None:
    raw = image.to_bytes()
    path.write_bytes(gzip.compress(raw) if path.name.endswith(".gz") else raw)


def _bytes(data: bytes, gz: bool = False) -> Writer:
    return lambda path, a, f: path.write_bytes(gzip.compress(data) if gz else data)


def _good_bytes(array: np.ndarray, affine: np.ndarray) -> bytes:
    return gzip.compress(_image(array.astype(np.float32), affine).to_bytes())


def _truncated(fraction: float) -> Writer:
    def write(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
        data = _good_bytes(array, affine)
        path.write_bytes(data[: int(len(data) * fraction)])
    return write


def _flipped_trailer_at(start: int) -> Writer:
    """A gzip member whose trailer (CRC-32 at -8, length at -4) no longer matches its data."""
    def write(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
        data = bytearray(_good_bytes(array, affine))
        data[start : start + 4] = bytes(b ^ 0xFF for b in data[start : start + 4])
        path.write_bytes(bytes(data))
    return write


def _uncompressed_short(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
    raw = _image(array.astype(np.float32), affine).to_bytes()
    path.with_suffix("").write_bytes(raw[: len(raw) // 2])  # .nii: the header promises more voxels than the file has
    path.with_suffix("").rename(path)


def _header_only(shape: tuple[int, ...], cls: type = nib.Nifti2Image, gz: bool = True) -> Writer:
    """A header that declares ``shape`` followed by no voxel at all: reading it must not allocate ``shape``."""
    def write(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
        header = cls.header_class()
        header.set_data_dtype(np.float32)
        header.set_data_shape(shape)
        header.set_sform(affine, code=1)
        block = header.binaryblock + b"\0" * (int(header.get_data_offset()) - len(header.binaryblock))
        path.write_bytes(gzip.compress(block) if gz else block)
    return write


def _raw_header(edit: Callable[[nib.Nifti1Header], None]) -> Writer:
    """Header fields set after nibabel's own consistency steps (fields nibabel would not let an image hold)."""
    def write(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
        image = _image(array.astype(np.float32), affine)
        raw = bytearray(image.to_bytes())
        header = nib.Nifti1Header(bytes(raw[:348]))
        edit(header)
        raw[:348] = header.binaryblock
        path.write_bytes(gzip.compress(bytes(raw)))
    return write


def _array(make: Callable[[np.ndarray], np.ndarray]) -> Writer:
    return lambda path, array, affine: _save(path, _image(make(array), affine))


def _affine(make: Callable[[np.ndarray], np.ndarray]) -> Writer:
    """An sform no geometry has, written into the header bytes (nibabel refuses to build an image from it)."""
    def write(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
        bad = make(affine.copy())

        def edit(header: nib.Nifti1Header) -> None:
            header["srow_x"], header["srow_y"], header["srow_z"] = bad[0], bad[1], bad[2]
            header["sform_code"], header["qform_code"] = 1, 0

        _raw_header(edit)(path, array, affine)
    return write


def _with_value(value: float, dtype: type = np.float32) -> Writer:
    def make(array: np.ndarray) -> np.ndarray:
        out = array.astype(dtype)
        out.flat[out.size // 2] = value
        return out
    return _array(make)


def _rgb(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
    rgb = np.zeros(array.shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    rgb["R"] = np.clip(array, 0, 255)
    _save(path, _image(rgb, affine))


def _rgba(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
    rgba = np.zeros(array.shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1"), ("A", "u1")])
    _save(path, _image(rgba, affine))


def _binary_code(header: nib.Nifti1Header) -> None:
    header["datatype"], header["bitpix"] = 1, 1


def _directory(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
    path.mkdir()
    (path / "inside.nii.gz").write_bytes(_good_bytes(array, affine))


def _link_to(target: str) -> Writer:
    return lambda path, array, affine: path.symlink_to(target)


def _link_loop(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
    other = path.with_name(f".loop-{path.name}")
    other.symlink_to(path.name)
    path.symlink_to(other.name)


def _fifo(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
    os.mkfifo(path)


def _shifted(make: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]) -> Writer:
    """A good file on another grid than the rest of its case."""
    def write(path: Path, array: np.ndarray, affine: np.ndarray) -> None:
        new_array, new_affine = make(array, affine.copy())
        _save(path, _image(new_array.astype(np.float32), new_affine))
    return write


def _move(affine: np.ndarray) -> np.ndarray:
    affine[:3, 3] += 5.0
    return affine


def _scale(affine: np.ndarray) -> np.ndarray:
    affine[:3, :3] *= 1.1
    return affine


def _zero_column(affine: np.ndarray) -> np.ndarray:
    affine[:3, 2] = 0.0
    return affine


def _collinear(affine: np.ndarray) -> np.ndarray:
    affine[:3, 1] = affine[:3, 0]
    return affine


def _set(field: str, value: object) -> Callable[[nib.Nifti1Header], None]:
    def edit(header: nib.Nifti1Header) -> None:
        header[field] = value
    return edit


def _pixdim(values: tuple[float, float, float]) -> Callable[[nib.Nifti1Header], None]:
    def edit(header: nib.Nifti1Header) -> None:
        pixdim = header["pixdim"].copy()
        pixdim[1:4] = values
        header["pixdim"] = pixdim
        header["qform_code"] = header["sform_code"] = 0  # the voxel sizes are the only geometry left
    return edit


def _dims(values: tuple[int, ...]) -> Callable[[nib.Nifti1Header], None]:
    def edit(header: nib.Nifti1Header) -> None:
        dim = header["dim"].copy()
        dim[0] = len(values)
        dim[1 : 1 + len(values)] = values
        header["dim"] = dim
    return edit


CORPUS: tuple[BadFile, ...] = (
    # -- bytes that are not a NIfTI file
    BadFile("empty-gz", _bytes(b"")),
    BadFile("empty-gzip-member", _bytes(b"", gz=True)),
    BadFile("random-bytes", _bytes(np.random.default_rng(1).bytes(4096))),
    BadFile("random-gzipped", _bytes(np.random.default_rng(2).bytes(4096), gz=True)),
    BadFile("text-file", _bytes(b"patient scans are in the other folder\n" * 20)),
    BadFile("gzipped-text", _bytes(b"not a nifti header " * 40, gz=True)),
    BadFile("png-bytes", _bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 600)),
    BadFile("double-gzipped", lambda p, a, f: p.write_bytes(gzip.compress(_good_bytes(a, f)))),
    BadFile("truncated-header", _truncated(0.01)),
    BadFile("truncated-half", _truncated(0.5)),
    BadFile("truncated-end", _truncated(0.98)),
    BadFile("bad-gzip-crc", _flipped_trailer_at(-8)),
    BadFile("uncompressed-short", _uncompressed_short),
    BadFile("vox-offset-past-end", _raw_header(_set("vox_offset", 1 << 24))),
    BadFile("bad-magic", _raw_header(_set("magic", b"xx1"))),
    # -- shapes that are not a 3D volume
    BadFile("2d", _array(lambda a: a[:, :, a.shape[2] // 2].astype(np.float32))),
    BadFile("4d-three-volumes", _array(lambda a: np.stack([a, a, a], axis=-1).astype(np.float32))),
    BadFile("5d", _array(lambda a: a[..., None, None].repeat(2, axis=3).astype(np.float32))),
    BadFile("1d", _array(lambda a: a.ravel()[:64].astype(np.float32))),
    BadFile("zero-dim", _raw_header(_dims((0, 24, 24)))),
    BadFile("negative-dim", _raw_header(_dims((-24, 24, 24)))),
    # -- sizes no scan has, declared by a header with no voxels behind it
    BadFile("huge-100000-per-side", _header_only((100_000, 100_000, 100_000))),
    BadFile("huge-100000-uncompressed", _header_only((100_000, 100_000, 100_000), gz=False)),
    BadFile("huge-nifti1-32767", _header_only((32767, 32767, 32767), cls=nib.Nifti1Image)),
    BadFile("huge-total-2048-cubed", _header_only((2048, 2048, 2048))),
    BadFile("huge-one-side", _header_only((200_000, 4, 4))),
    # -- voxel types that are not one real number
    BadFile("complex64", _array(lambda a: a.astype(np.complex64) * (1 + 1j))),
    BadFile("complex128", _array(lambda a: a.astype(np.complex128))),
    BadFile("rgb24", _rgb),
    BadFile("rgba32", _rgba),
    BadFile("binary-datatype", _raw_header(_binary_code)),
    BadFile("unknown-datatype", _raw_header(_set("datatype", 99))),
    # -- geometry that is not geometry
    BadFile("pixdim-all-zero", _raw_header(_pixdim((0.0, 0.0, 0.0)))),
    BadFile("pixdim-nan", _raw_header(_pixdim((np.nan, 1.0, 1.0)))),
    BadFile("sform-zero-column", _affine(_zero_column)),
    BadFile("sform-collinear", _affine(_collinear)),
    BadFile("sform-nan", _affine(lambda f: f * np.nan)),
    BadFile("sform-inf", _affine(lambda f: f + np.inf)),
    # -- voxels that are not numbers
    BadFile("nan-voxel", _with_value(np.nan)),
    BadFile("inf-voxel", _with_value(np.inf)),
    BadFile("minus-inf-voxel", _with_value(-np.inf, np.float64)),
    BadFile("all-nan", _array(lambda a: np.full(a.shape, np.nan, np.float32))),
    BadFile("float64-nan", _with_value(np.nan, np.float64)),
    # -- things that are not files
    BadFile("directory", _directory),
    BadFile("device", _link_to("/dev/null")),
    BadFile("fifo", _fifo),
    BadFile("dangling-link", _link_to("nowhere/gone.nii.gz")),
    BadFile("link-loop", _link_loop),
    # -- good files that do not match the rest of their case
    BadFile("grid-shape", _shifted(lambda a, f: (np.pad(a, ((0, 1), (0, 0), (0, 0))), f))),
    BadFile("grid-origin", _shifted(lambda a, f: (a, _move(f)))),
    BadFile("grid-spacing", _shifted(lambda a, f: (a, _scale(f)))),
)

#: Entries whose file is fine on its own (only its case makes it bad).
GRID_ENTRIES = frozenset({"grid-shape", "grid-origin", "grid-spacing"})


def write_corpus(folder: Path, array: np.ndarray, affine: np.ndarray) -> dict[str, Path]:
    """Write every entry as ``folder/<entry>_t1.nii.gz``; returns the paths by entry name."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for entry in CORPUS:
        path = folder / f"{entry.name}_t1.nii.gz"
        entry.write(path, array, affine)
        paths[entry.name] = path
    return paths


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: bad_nifti_corpus.py OUT_DIR")
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    volume = np.random.default_rng(0).normal(100, 20, (16, 16, 16)).astype(np.float32)
    for name, path in write_corpus(Path(sys.argv[1]), volume, affine).items():
        print(f"{name:28s} {path}")
