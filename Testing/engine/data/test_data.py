"""Training-data readers, validation and preprocessing: every layout, every bad-data case."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from medsynth_engine.data import PreprocessSpec, find_cases, load_training_set, preprocess_case
from medsynth_engine.data.layouts import detect_layout
from medsynth_engine.errors import MedSynthError

from MedSynthLib.conventions import NNUNET_FROM_BRATS

SPEC = PreprocessSpec(shape=(16, 16, 16), spacing=(9.0, 9.0, 9.0))


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _first_file(folder: Path, channel: str) -> Path:
    return sorted(folder.glob(f"*/*_{channel}.nii.gz"))[0]


def test_brats_folder(make_phantom_set):
    data = load_training_set(make_phantom_set(), SPEC)
    assert data.layout == "brats"
    assert data.channels == ("t1", "t1ce", "t2", "flair", "seg")
    assert tuple(data.images.shape) == (4, 4, 16, 16, 16)
    assert data.images.min() >= -1 and data.images.max() <= 1
    assert set(data.labels.unique().tolist()) <= {0, 1, 2, 4} and data.labels.max() > 0
    assert data.batch(np.array([0, 1])).shape == (2, 8, 16, 16, 16)
    assert set(data.scale) == {"t1", "t1ce", "t2", "flair"} and data.scale["t1"]["high"] > 500


def test_nnunet_labels_map_back_to_brats(make_phantom_set):
    brats = load_training_set(make_phantom_set(), SPEC)
    nnunet_set = make_phantom_set(layout="nnunet")
    assert detect_layout(nnunet_set) == "nnunet"
    data = load_training_set(nnunet_set, SPEC)
    assert data.layout == "nnunet" and data.channels == brats.channels
    # the same seeds give the same subjects in both layouts; cases are sorted by random id, so compare as sets
    assert sorted(data.labels.sum(dim=(1, 2, 3)).tolist()) == sorted(brats.labels.sum(dim=(1, 2, 3)).tolist())
    raw = np.asanyarray(nib.load(sorted((nnunet_set / "labelsTr").glob("*.nii.gz"))[0]).dataobj)
    assert set(np.unique(raw)) <= set(NNUNET_FROM_BRATS.values())


def test_plain_folder_needs_one_channel(make_phantom_set, tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    for i, path in enumerate(sorted(make_phantom_set().glob("*/*_t1.nii.gz"))):
        shutil.copy(path, plain / f"scan{i}.nii.gz")
    with pytest.raises(MedSynthError, match="--channels t1"):
        find_cases(plain)
    data = load_training_set(plain, SPEC, channels=("t1",))
    assert data.layout == "plain" and data.channels == ("t1",) and data.labels is None
    assert tuple(data.images.shape) == (4, 1, 16, 16, 16)


def test_empty_folder(tmp_path):
    with pytest.raises(MedSynthError, match="no NIfTI"):
        load_training_set(tmp_path, SPEC)


def _break(path: Path, how: str) -> None:
    image = nib.load(path)
    array = np.asanyarray(image.dataobj)
    if how == "truncated":
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    elif how == "garbage":
        path.write_bytes(gzip.compress(b"not a nifti file at all" * 20))
    elif how == "4d":
        nib.save(nib.Nifti1Image(np.stack([array, array], axis=-1), image.affine), path)
    elif how == "nan":
        bad = array.astype(np.float32)
        bad[1, 1, 1] = np.nan
        nib.save(nib.Nifti1Image(bad, image.affine), path)
    elif how == "shape":
        nib.save(nib.Nifti1Image(array[:-2], image.affine), path)
    elif how == "affine":
        shifted = image.affine.copy()
        shifted[0, 3] += 5.0
        nib.save(nib.Nifti1Image(array, shifted), path)
    elif how == "labels":
        bad = array.copy()
        bad[0, 0, 0] = 3
        nib.save(nib.Nifti1Image(bad, image.affine), path)


@pytest.mark.parametrize(
    "how,channel,message",
    [
        ("truncated", "t2", "corrupt or truncated"),
        ("garbage", "t1", "not a readable NIfTI"),
        ("4d", "flair", "4D image"),
        ("nan", "t1ce", "NaN"),
        ("shape", "t2", "has shape"),
        ("affine", "flair", "same grid"),
        ("labels", "seg", "label"),
    ],
)
def test_bad_file_is_named_and_can_be_skipped(make_phantom_set, tmp_path, how, channel, message):
    folder = _copy(make_phantom_set(), tmp_path / "set")
    bad = _first_file(folder, channel)
    _break(bad, how)
    with pytest.raises(MedSynthError, match=message) as info:
        load_training_set(folder, SPEC)
    assert bad.name in str(info.value) and "--skip-bad" in str(info.value)
    data = load_training_set(folder, SPEC, skip_bad=True)
    assert len(data) == 3
    assert len(data.skipped) == 1 and data.skipped[0]["case"] == bad.parent.name
    assert bad.parent.name not in data.case_ids


def test_missing_channel_and_all_bad(make_phantom_set, tmp_path):
    folder = _copy(make_phantom_set(), tmp_path / "set")
    _first_file(folder, "flair").unlink()
    with pytest.raises(MedSynthError, match="has no flair"):
        load_training_set(folder, SPEC, channels=("t1", "flair", "seg"))
    for path in folder.glob("*/*_t1.nii.gz"):
        path.write_bytes(b"")
    with pytest.raises(MedSynthError, match="None of the 4"):
        load_training_set(folder, SPEC, channels=("t1",), skip_bad=True)


def test_nnunet_dataset_json_errors(make_phantom_set, tmp_path):
    folder = _copy(make_phantom_set(layout="nnunet"), tmp_path / "nn")
    meta = json.loads((folder / "dataset.json").read_text())
    meta["channel_names"]["0"] = "DWI"
    (folder / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(MedSynthError, match="DWI"):
        find_cases(folder)
    (folder / "dataset.json").write_text("{")
    with pytest.raises(MedSynthError, match="dataset.json"):
        find_cases(folder)


def _head(shape=(40, 48, 36)) -> np.ndarray:
    grid = np.indices(shape).astype(np.float32)
    centre = np.array(shape)[:, None, None, None] / 2 + np.array([3, -2, 1])[:, None, None, None]
    radius = np.sqrt((((grid - centre) / np.array([14, 18, 12])[:, None, None, None]) ** 2).sum(0))
    head = np.where(radius < 1, 800 + 200 * grid[0] / shape[0], 0).astype(np.float32)
    return head


def test_reorientation_gives_the_same_ras_volume():
    """An LPI-stored copy of a volume preprocesses to the same voxels as the RAS original."""
    head = _head()
    ras = np.diag([2.0, 2.0, 2.0, 1.0])
    flipped = head[::-1, ::-1, ::-1].copy()
    affine = ras.copy()
    affine[:3, :3] = np.diag([-2.0, -2.0, -2.0])
    affine[:3, 3] = np.array(head.shape[:3]) * 2.0 - 2.0
    spec = PreprocessSpec(shape=(16, 16, 16), spacing=(4.0, 4.0, 4.0))
    a, _ = preprocess_case({"t1": head}, ras, spec)
    b, _ = preprocess_case({"t1": flipped}, affine, spec)
    np.testing.assert_allclose(a["t1"], b["t1"], atol=1e-4)


def test_resample_crop_pad_and_normalise():
    head = _head()
    seg = (head > 0).astype(np.uint8) * 2
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    spec = PreprocessSpec(shape=(24, 24, 24), spacing=(3.0, 3.0, 3.0))
    out, scale = preprocess_case({"t1": head, "seg": seg}, affine, spec)
    assert out["t1"].shape == (24, 24, 24) and out["seg"].shape == (24, 24, 24)
    assert out["t1"].min() == -1.0 and out["t1"].max() == 1.0
    assert set(np.unique(out["seg"])) == {0, 2}
    assert scale["t1"][1] > 900
    # the head (28 x 36 x 24 mm radii: about 19 x 24 x 16 voxels at 3 mm) is centred: background at the x and z faces
    assert out["t1"][0].max() < -0.99 and out["t1"][-1].max() < -0.99 and out["t1"][:, :, 0].max() < -0.99
    # labels follow the image: oedema where the head is
    assert np.all(out["t1"][out["seg"] == 2] > -1.0 + 1e-3) or (out["seg"] == 2).mean() > 0.05
    # a grid smaller than the head is cropped around its centre
    small, _ = preprocess_case({"t1": head}, affine, PreprocessSpec(shape=(8, 8, 8), spacing=(3.0, 3.0, 3.0)))
    assert small["t1"].shape == (8, 8, 8) and small["t1"].min() > -1.0
