"""add_channel / `medsynth add-channel`: grid and affine identity, .seg.nrrd for Slicer, bad input, no half-written files."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import slicerio
from medsynth_engine import addchannel
from medsynth_engine.addchannel import AddChannelRequest, add_channel, channel_models, default_channel_model
from medsynth_engine.errors import MedSynthError
from medsynth_engine.nifti_io import read_nifti, write_nifti

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

MEDSYNTH_BIN = Path(sys.executable).parent / "medsynth"
SEQ = "t1,t1ce,t2,flair"


@pytest.fixture
def case(make_phantom_set, tmp_path) -> Path:
    """A writable copy of one 24^3, 6 mm phantom case with the four sequences (no seg, no ct)."""
    data = make_phantom_set(n=1, shape=(24, 24, 24), spacing=6.0, channels=SEQ, seed=31)
    source = next(p for p in data.iterdir() if p.is_dir())
    return Path(shutil.copytree(source, tmp_path / source.name))


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_seg_lands_on_the_exact_grid_with_a_slicer_segmentation(case):
    before = _files(case)
    seen: list[tuple[float, str]] = []
    result = add_channel(AddChannelRequest(case=case, channel="seg", device="cpu"), progress=lambda f, m: seen.append((f, m)))
    nifti, nrrd = case / f"{case.name}_seg.nii.gz", case / f"{case.name}_seg.seg.nrrd"
    assert result["channel"] == "seg" and result["model"] == default_channel_model("seg") == "seg-phantom"
    assert result["inputs"] == ["t1", "t1ce", "t2", "flair"] and result["written"] == [str(nifti.resolve()), str(nrrd.resolve())]
    assert _files(case) == before | {nifti.name, nrrd.name}  # no temporary file left
    assert seen[-1][0] == 1.0 and all(0 <= f <= 1 for f, _ in seen)
    t1 = nib.load(case / f"{case.name}_t1.nii.gz")
    seg = nib.load(nifti)
    assert seg.shape == t1.shape and np.array_equal(seg.affine, t1.affine) and seg.get_data_dtype() == np.uint8
    assert seg.header["descrip"].tobytes().rstrip(b"\0") == b"synthetic image (MedSynth)"
    labels = np.asarray(seg.dataobj)
    assert set(np.unique(labels)) <= {0, 1, 2, 4}
    segmentation = slicerio.read_segmentation(str(nrrd))
    names = {s["labelValue"]: (s["name"], tuple(np.round(s["color"], 3))) for s in segmentation["segments"]}
    assert names == {1: ("Necrotic tumour core", (0.0, 0.8, 0.0)), 2: ("Peritumoural oedema", (1.0, 0.85, 0.0)), 4: ("Enhancing tumour", (0.9, 0.1, 0.1))}
    assert np.array_equal(segmentation["voxels"], labels)
    np.testing.assert_allclose(segmentation["ijkToLPS"], np.diag([-1, -1, 1, 1]) @ t1.affine, atol=1e-5)


def test_ct_from_one_file_on_an_oblique_grid_keeps_the_affine_bit_for_bit(case, tmp_path):
    t1, affine = read_nifti(case / f"{case.name}_t1.nii.gz")
    angle = np.deg2rad(17.0)
    rotation = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    oblique = affine.copy()
    oblique[:3, :3] = rotation @ np.diag([5.0, 6.0, 7.0])
    oblique[:3, 3] += [3.3, -1.7, 2.9]
    single = tmp_path / "scan.nii.gz"
    write_nifti(single, t1[:, 2:22, :], oblique)
    written = nib.load(single)
    result = add_channel(AddChannelRequest(case=single, channel="ct", out=tmp_path / "out", device="cpu"))
    assert result["inputs"] == ["t1"] and result["written"] == [str((tmp_path / "out" / "scan_ct.nii.gz").resolve())]
    ct = nib.load(result["written"][0])
    assert ct.shape == (24, 20, 24) and np.array_equal(ct.affine, written.affine) and ct.get_data_dtype() == np.int16
    values = np.asarray(ct.dataobj)
    assert values.min() >= -1024 and values.max() <= 3071


def test_seg_from_flair_alone(case, tmp_path):
    flair = case / f"{case.name}_flair.nii.gz"
    result = add_channel(AddChannelRequest(case=flair, channel="seg", out=tmp_path / "o", device="cpu"))
    assert result["inputs"] == ["flair"]
    assert Path(result["written"][0]).name == f"{case.name}_seg.nii.gz"


def test_existing_channel_is_kept_unless_replace(case):
    target = case / f"{case.name}_seg.nii.gz"
    target.write_bytes(b"keep me")
    with pytest.raises(MedSynthError, match=r"already exists; add --replace to overwrite it\.$"):
        add_channel(AddChannelRequest(case=case, channel="seg", device="cpu"))
    assert target.read_bytes() == b"keep me" and not (case / f"{case.name}_seg.seg.nrrd").exists()
    add_channel(AddChannelRequest(case=case, channel="seg", replace=True, device="cpu"))
    assert read_nifti(target)[0].shape == (24, 24, 24)


def test_both_files_or_neither(case, monkeypatch):
    before = _files(case)

    def broken(path, codes, affine):
        Path(path).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(addchannel, "_segmentation_nrrd", broken)
    with pytest.raises(OSError):
        add_channel(AddChannelRequest(case=case, channel="seg", device="cpu"))
    assert _files(case) == before


def _mangle(case: Path, kind: str) -> None:
    t2 = case / f"{case.name}_t2.nii.gz"
    array, affine = read_nifti(t2)
    if kind == "shape":
        write_nifti(t2, array[:, :, :20], affine)
    elif kind == "affine":
        shifted = affine.copy()
        shifted[0, 3] += 4.0
        write_nifti(t2, array, shifted)
    elif kind == "nan":
        bad = array.astype(np.float32)
        bad[5, 5, 5] = np.nan
        write_nifti(t2, bad, affine)
    elif kind == "truncated":
        t2.write_bytes(t2.read_bytes()[:300])
    elif kind == "4d":
        write_nifti_4d = nib.Nifti1Image(np.stack([array, array], axis=-1), affine)
        t2.write_bytes(gzip.compress(write_nifti_4d.to_bytes()))
    elif kind == "no-mr":
        for path in case.glob("*_t*.nii.gz"):
            path.unlink()
        (case / f"{case.name}_flair.nii.gz").unlink()


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("shape", r"has shape .* but .*_t1.nii.gz of the same case"),
        ("affine", r"is not on the same grid \(affine\) as .*_t1.nii.gz"),
        ("nan", r"contains NaN or infinite values"),
        ("truncated", r"is not a readable NIfTI file \(corrupt or truncated"),
        ("4d", r"holds a 4D image with 2 volumes; a 3D volume is needed"),
        ("no-mr", r"has no MR sequence file"),
    ],
)
def test_bad_cases_are_one_sentence_and_write_nothing(case, kind, message):
    _mangle(case, kind)
    before = _files(case)
    with pytest.raises(MedSynthError, match=message):
        add_channel(AddChannelRequest(case=case, channel="ct", device="cpu"))
    assert _files(case) == before


def test_unknown_channel_model_and_models_of_the_wrong_kind(case, tmp_path):
    with pytest.raises(MedSynthError, match="Unknown channel 'pet'"):
        add_channel(AddChannelRequest(case=case, channel="pet"))
    with pytest.raises(MedSynthError, match="Unknown seg model 'nope'; known: seg-phantom"):
        add_channel(AddChannelRequest(case=case, channel="seg", model="nope"))
    with pytest.raises(MedSynthError, match="'mr2ct' model; the seg channel needs a model that adds it such as seg-phantom"):
        add_channel(AddChannelRequest(case=case, channel="seg", model="mr2ct-phantom"))
    with pytest.raises(MedSynthError, match="'pgan3d' model; the ct channel needs a model that adds it such as mr2ct-phantom"):
        add_channel(AddChannelRequest(case=case, channel="ct", model="pgan3d-phantom"))
    with pytest.raises(MedSynthError, match="does not exist"):
        add_channel(AddChannelRequest(case=tmp_path / "missing", channel="seg"))
    seg_file = tmp_path / "p_seg.nii.gz"
    write_nifti(seg_file, np.zeros((4, 4, 4), np.uint8), np.eye(4))
    with pytest.raises(MedSynthError, match="is named as a seg channel, not an MR sequence"):
        add_channel(AddChannelRequest(case=seg_file, channel="ct"))


def test_channel_models_lists_the_shipped_defaults():
    rows = {row["id"]: row for row in channel_models()}
    assert rows["seg-phantom"]["channel"] == "seg" and rows["seg-phantom"]["default"]
    assert rows["mr2ct-phantom"]["channel"] == "ct" and rows["mr2ct-phantom"]["kind"] == "translation"
    assert "pgan3d-phantom" not in rows and len(rows["seg-phantom"]["weights_sha256"]) == 64


def test_cli_adds_a_channel_and_fails_with_one_sentence(case):
    ok = subprocess.run(
        [str(MEDSYNTH_BIN), "add-channel", "--channel", "ct", "--case", str(case), "--device", "cpu"], capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert (case / f"{case.name}_ct.nii.gz").is_file() and "mr2ct-phantom" in ok.stdout
    again = subprocess.run([str(MEDSYNTH_BIN), "add-channel", "--channel", "ct", "--case", str(case)], capture_output=True, text=True)
    assert again.returncode == 2
    lines = again.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("medsynth: error: ") and "add --replace" in lines[0]
    listing = subprocess.run([str(MEDSYNTH_BIN), "models"], capture_output=True, text=True)
    assert listing.returncode == 0 and "Channel models" in listing.stdout and "seg-phantom" in listing.stdout


def test_n4_is_on_for_seg_off_for_ct_and_switchable(case, tmp_path):
    seen: list[str] = []
    seg = add_channel(AddChannelRequest(case=case, channel="seg", device="cpu"), progress=lambda f, m: seen.append(m))
    assert seg["n4"] is True and seg["n4_seconds"] > 0 and any("correcting the bias field (N4)" in m for m in seen)
    plain = add_channel(AddChannelRequest(case=case, channel="seg", device="cpu", n4=False, out=tmp_path / "plain"))
    assert plain["n4"] is False and plain["n4_seconds"] == 0
    ct = add_channel(AddChannelRequest(case=case, channel="ct", device="cpu"))
    assert ct["n4"] is False
    forced = add_channel(AddChannelRequest(case=case, channel="ct", device="cpu", n4=True, out=tmp_path / "forced"))
    assert forced["n4"] is True
    # the correction reaches the model: mr2ct's HU differ with and without it
    assert not np.array_equal(read_nifti(Path(ct["written"][0]))[0], read_nifti(Path(forced["written"][0]))[0])


def test_a_volume_n4_cannot_correct_is_one_sentence_naming_it(case, tmp_path):
    t1, affine = read_nifti(case / f"{case.name}_t1.nii.gz")
    (tmp_path / "thin").mkdir()
    thin = tmp_path / "thin" / "thin_t1.nii.gz"
    write_nifti(thin, t1[:, :, 10:13], affine)  # three slices
    with pytest.raises(MedSynthError) as caught:
        add_channel(AddChannelRequest(case=thin, channel="seg", device="cpu"))
    message = str(caught.value)
    assert str(thin) in message and "N4 bias correction failed" in message and "--n4 off" in message and "\n" not in message
    assert sorted(p.name for p in thin.parent.iterdir()) == ["thin_t1.nii.gz"]


def test_cli_n4_switch(case):
    on = subprocess.run([str(MEDSYNTH_BIN), "add-channel", "--channel", "seg", "--case", str(case), "--device", "cpu"], capture_output=True, text=True)
    assert on.returncode == 0, on.stderr
    assert "(N4-corrected)" in on.stdout.splitlines()[0]
    off = subprocess.run([str(MEDSYNTH_BIN), "add-channel", "--channel", "seg", "--case", str(case), "--device", "cpu", "--replace", "--n4", "off",
                          "--json"], capture_output=True, text=True)
    assert off.returncode == 0, off.stderr
    assert json.loads(off.stdout)["n4"] is False
