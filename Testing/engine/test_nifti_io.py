"""Anonymised NIfTI writing and careful reading."""

from __future__ import annotations

import gzip
import struct

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from medsynth_engine.errors import MedSynthError
from medsynth_engine.nifti_io import NEUTRAL_DESCRIPTION, anonymous_image, nifti_bytes, read_nifti, write_nifti


@pytest.fixture
def volume():
    rng = np.random.default_rng(0)
    affine = np.array([[1.5, 0, 0, -90.0], [0, 1.2, 0, -120.5], [0, 0, 2.0, -60.0], [0, 0, 0, 1]])
    return rng.integers(-1000, 3000, size=(11, 13, 7)).astype(np.int16), affine


def test_header_carries_geometry_and_nothing_else(tmp_path, volume):
    array, affine = volume
    path = tmp_path / "x.nii.gz"
    write_nifti(path, array, affine)
    hdr = nib.load(str(path)).header
    assert bytes(hdr["descrip"]).rstrip(b"\0") == NEUTRAL_DESCRIPTION
    for name in ("aux_file", "db_name", "intent_name"):
        assert bytes(hdr[name]).rstrip(b"\0") == b""
    assert len(hdr.extensions) == 0
    assert hdr["sform_code"] == hdr["qform_code"] == 1
    assert np.allclose(hdr.get_sform(), affine) and np.allclose(hdr.get_qform(), affine)
    # The gzip member has no file name and no timestamp.
    raw = path.read_bytes()
    flags, mtime = raw[3], struct.unpack("<I", raw[4:8])[0]
    assert flags & 0x08 == 0 and mtime == 0
    assert not list(tmp_path.glob(".*partial"))


def test_nibabel_and_simpleitk_read_the_same_voxels_and_geometry(tmp_path, volume):
    array, affine = volume
    path = tmp_path / "x.nii.gz"
    write_nifti(path, array, affine)
    back, back_affine = read_nifti(path)
    assert back.dtype == np.int16 and np.array_equal(back, array) and np.allclose(back_affine, affine)
    image = sitk.ReadImage(str(path))
    assert np.array_equal(sitk.GetArrayFromImage(image).transpose(2, 1, 0), array)
    # SimpleITK is LPS: x and y flip sign relative to the RAS affine.
    assert np.allclose(image.GetSpacing(), [1.5, 1.2, 2.0])
    assert np.allclose(image.GetOrigin(), [90.0, 120.5, -60.0])


def test_truncated_corrupt_4d_and_nan_files_are_one_sentence_errors(tmp_path, volume):
    array, affine = volume
    good = tmp_path / "good.nii.gz"
    write_nifti(good, array, affine)
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    corrupt = tmp_path / "corrupt.nii.gz"
    corrupt.write_bytes(gzip.compress(b"this is not a nifti header" * 20))
    four_d = tmp_path / "4d.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 3), np.float32), affine), str(four_d))
    nan = tmp_path / "nan.nii.gz"
    nan_array = np.zeros((4, 4, 4), np.float32)
    nan_array[1, 1, 1] = np.nan
    nib.save(nib.Nifti1Image(nan_array, affine), str(nan))
    for path, message in [
        (truncated, "corrupt or truncated"),
        (corrupt, "not a readable NIfTI"),
        (four_d, "4D image"),
        (nan, "NaN"),
        (tmp_path / "missing.nii.gz", "does not exist"),
        (tmp_path, "is a folder, not a file"),
    ]:
        with pytest.raises(MedSynthError, match=message):
            read_nifti(path)


def test_only_3d_volumes_are_written(tmp_path):
    with pytest.raises(MedSynthError, match="Only 3D"):
        write_nifti(tmp_path / "x.nii.gz", np.zeros((2, 2)), np.eye(4))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("dtype", [np.int16, np.uint8, np.float32])
def test_the_plane_by_plane_transpose_writes_nibabel_s_bytes(volume, dtype):
    """``nifti_bytes`` replaces nibabel's ``to_bytes`` for speed: the same bytes, for C-ordered and strided input."""
    array, affine = volume
    rng = np.random.default_rng(1)
    for case in (array.astype(dtype), rng.normal(size=(9, 5, 12)).astype(dtype)[:, ::-1], np.asfortranarray(array.astype(dtype))):
        assert bytes(nifti_bytes(case, affine)) == anonymous_image(np.ascontiguousarray(case), affine).to_bytes()
