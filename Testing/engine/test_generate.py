"""`medsynth generate`: complete, anonymised, reproducible sets; bad input refused; nothing half-written."""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from medsynth_engine.cli import main
from medsynth_engine.generate import GenerateRequest, case_seed, generate_set
from medsynth_engine.nifti_io import NEUTRAL_DESCRIPTION

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

MEDSYNTH = [sys.executable, "-m", "medsynth_engine.cli"]
SMALL = ["--shape", "24", "--spacing", "6"]
ALL = "t1,t1ce,t2,flair,seg,ct"
CASE_ID = re.compile(r"^ms-[0-9a-f]{10}$")

# Header fields a written file may set; every other field must hold its empty default.
GEOMETRY_FIELDS = {
    "sizeof_hdr", "dim", "datatype", "bitpix", "pixdim", "vox_offset", "scl_slope", "scl_inter", "xyzt_units",
    "qform_code", "sform_code", "quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y", "qoffset_z",
    "srow_x", "srow_y", "srow_z", "magic", "descrip",
}


def _run(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*MEDSYNTH, *args], capture_output=True, text=True, timeout=300, **kw)


@pytest.fixture(scope="module")
def cli_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "set"
    result = _run("generate", "-n", "2", "--seed", "5", "--channels", ALL, "--out", str(out), *SMALL)
    assert result.returncode == 0, result.stderr
    return out, result


def test_cli_writes_a_brats_set_with_manifest_and_progress(cli_set):
    out, result = cli_set
    assert "Generating" in result.stderr and "2/2" in result.stderr
    assert str(out) in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["id"] == "phantom" and len(manifest["model"]["weights_sha256"]) == 64
    assert manifest["parameters"] == {
        "n": 2, "seed": 5, "channels": ALL.split(","), "layout": "brats", "shape": [24, 24, 24],
        "spacing": [6.0, 6.0, 6.0], "tumour": True,
    }
    assert manifest["labels"] == {"1": "NCR", "2": "ED", "4": "ET"}
    assert sorted(c["seed"] for c in manifest["cases"]) == sorted(case_seed(5, i) for i in range(2))
    cases = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert cases == sorted(c["id"] for c in manifest["cases"])
    for case in cases:
        assert CASE_ID.match(case)
        assert sorted(p.name for p in (out / case).iterdir()) == sorted(f"{case}_{c}.nii.gz" for c in ALL.split(","))
    assert not [p for p in out.parent.iterdir() if ".partial" in p.name]


def test_manifest_says_nothing_about_user_machine_or_time(cli_set):
    out, _ = cli_set
    text = (out / "manifest.json").read_text()
    for secret in {os.environ.get("USER", "root"), os.uname().nodename, str(out), str(Path.home()), time.strftime("%Y-")}:
        assert secret not in text, secret


def test_every_header_field_of_every_file_is_anonymous(cli_set):
    out, _ = cli_set
    files = sorted(out.glob("*/*.nii.gz"))
    assert len(files) == 12
    for path in files:
        hdr = nib.load(str(path)).header
        assert len(hdr.extensions) == 0, path
        assert bytes(hdr["descrip"]).rstrip(b"\0") == NEUTRAL_DESCRIPTION
        for name in hdr.keys():
            if name in GEOMETRY_FIELDS:
                continue
            value = hdr[name]
            empty = value.tobytes().strip(b"\0 ") == b"" if value.dtype.kind == "S" else not np.any(value)
            assert empty, f"{path.name}: header field {name} = {value!r}"
        raw = path.read_bytes()
        assert raw[3] & 0x08 == 0 and raw[4:8] == b"\0\0\0\0"  # gzip: no file name, no timestamp


def test_channels_share_one_ras_grid_and_read_identically_with_simpleitk(cli_set):
    out, _ = cli_set
    for case in [p for p in out.iterdir() if p.is_dir()]:
        affines = []
        for path in sorted(case.glob("*.nii.gz")):
            image = nib.load(str(path))
            data = np.asanyarray(image.dataobj)
            assert data.shape == (24, 24, 24)
            assert np.allclose(np.abs(np.diag(image.affine)[:3]), 6.0) and image.affine[0, 0] > 0 and image.affine[1, 1] > 0
            affines.append(image.affine)
            itk = sitk.ReadImage(str(path))
            assert np.array_equal(sitk.GetArrayFromImage(itk).transpose(2, 1, 0), data)
            assert np.allclose(itk.GetOrigin(), image.affine[:3, 3] * [-1, -1, 1])
        assert all(np.array_equal(a, affines[0]) for a in affines)
        seg = np.asanyarray(nib.load(str(next(case.glob("*_seg.nii.gz")))).dataobj)
        assert seg.dtype == np.uint8 and set(np.unique(seg)) <= {0, 1, 2, 4}


def _arrays_by_seed(out: Path) -> dict[int, dict[str, np.ndarray]]:
    manifest = json.loads((out / "manifest.json").read_text())
    return {c["seed"]: {ch: np.asanyarray(nib.load(str(out / rel)).dataobj) for ch, rel in c["files"].items()} for c in manifest["cases"]}


def test_same_seed_gives_identical_voxels_and_ids_and_another_seed_new_ones(tmp_path, registry):
    kw = dict(model="phantom", n=2, seed=9, channels="t1,flair,seg", shape=(20, 24, 20), spacing=(7.0,) * 3, device="cpu")
    a = generate_set(GenerateRequest(out=tmp_path / "a", **kw), registry)
    b = generate_set(GenerateRequest(out=tmp_path / "b", **kw), registry)
    c = generate_set(GenerateRequest(out=tmp_path / "c", **{**kw, "seed": 10}), registry)
    va, vb, vc = _arrays_by_seed(a), _arrays_by_seed(b), _arrays_by_seed(c)
    assert va.keys() == vb.keys() and not set(va) & set(vc)
    for seed in va:
        for channel in ("t1", "flair", "seg"):
            assert np.array_equal(va[seed][channel], vb[seed][channel])
    ids = lambda p: {x["id"] for x in json.loads((p / "manifest.json").read_text())["cases"]}  # noqa: E731
    assert ids(a) == ids(b), "case ids derive from the run seed and the case index, so a resumed run can match"
    assert not ids(a) & ids(c)
    assert all(CASE_ID.match(i) for i in ids(a) | ids(c))


def test_no_tumour_gives_empty_labels(tmp_path, registry):
    out = generate_set(GenerateRequest(model="phantom", n=1, seed=1, out=tmp_path / "s", channels="t1,seg", shape=(16, 16, 16), spacing=(9.0,) * 3, tumour=False), registry)
    (labels,) = [v["seg"] for v in _arrays_by_seed(out).values()]
    assert not labels.any()


def test_nnunet_layout_is_read_by_monai_and_labels_follow_nnunet(tmp_path, make_phantom_set):
    out = make_phantom_set(n=2, channels="t1,t1ce,t2,flair,seg", layout="nnunet")
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["channel_names"] == {"0": "T1", "1": "T1ce", "2": "T2", "3": "FLAIR"}
    assert dataset["file_ending"] == ".nii.gz" and dataset["numTraining"] == 2
    assert dataset["labels"]["background"] == 0 and dataset["regions_class_order"] == [1, 2, 3]
    images = sorted(p.name for p in (out / "imagesTr").iterdir())
    labels = sorted(p.name for p in (out / "labelsTr").iterdir())
    assert len(images) == 8 and len(labels) == 2
    for label in labels:
        case = label[: -len(".nii.gz")]
        assert [f"{case}_{i:04d}.nii.gz" for i in range(4)] == [i for i in images if i.startswith(case)]
        values = set(np.unique(np.asanyarray(nib.load(str(out / "labelsTr" / label)).dataobj)))
        assert values <= {0, 1, 2, 3} and 3 in values  # ET became 3, as nnU-Net's BraTS conversion does

    from monai.data import load_decathlon_datalist
    from monai.transforms import LoadImaged

    items = load_decathlon_datalist(str(out / "dataset.json"), data_list_key="training", base_dir=str(out))
    loaded = LoadImaged(keys=["image", "label"], ensure_channel_first=True, image_only=True)(items[0])
    assert tuple(loaded["image"].shape) == (4, 24, 24, 24) and tuple(loaded["label"].shape) == (1, 24, 24, 24)


@pytest.mark.parametrize(
    "args, message",
    [
        (["-n", "0"], "at least 1"),
        (["-n", "-3"], "at least 1"),
        (["-n", "100000000"], "more than one run makes"),
        (["--seed", "-1"], "non-negative"),
        (["--model", "no-such-model"], "Unknown model 'no-such-model'"),
        (["--channels", "t1,pet"], "Unknown channel 'pet'"),
        (["--channels", "t1,t1"], "listed twice"),
        (["--shape", "2"], "8 to 512 voxels"),
        (["--shape", "512,512,512"], "too large"),
        (["--spacing", "0.01"], "spacing must be"),
        (["--layout", "nnunet", "--channels", "t1"], "needs the seg channel"),
        (["--device", "cuda:7"], "device"),
    ],
)
def test_bad_requests_are_one_sentence_and_exit_2(tmp_path, capsys, args, message):
    out = tmp_path / "set"
    code = main(["generate", "--out", str(out), *SMALL, *args]) if "--shape" not in args else main(["generate", "--out", str(out), *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.startswith("medsynth: error: ") and err.count("\n") == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_existing_non_empty_target_is_never_touched(tmp_path, capsys):
    out = tmp_path / "set"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    assert main(["generate", "--out", str(out), *SMALL]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["precious.txt"] and (out / "precious.txt").read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_empty_existing_target_is_used(tmp_path, capsys):
    out = tmp_path / "set"
    out.mkdir()
    assert main(["generate", "--out", str(out), "--quiet", "--channels", "t1", "--shape", "12", "--spacing", "10"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == str(out) and captured.err == ""
    assert (out / "manifest.json").is_file()


def test_missing_parent_folders_are_created_and_a_file_parent_is_refused(tmp_path, capsys):
    nested = tmp_path / "sets" / "2026" / "small"
    assert main(["generate", "--out", str(nested), "--quiet", "--channels", "t1", "--shape", "12", "--spacing", "10"]) == 0
    assert (nested / "manifest.json").is_file()
    capsys.readouterr()
    (tmp_path / "afile").write_text("x")
    assert main(["generate", "--out", str(tmp_path / "afile" / "set"), "--channels", "t1", "--shape", "12", "--spacing", "10"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_cli_errors_have_no_traceback_and_exit_2():
    result = _run("generate", "-n", "0", "--out", "/tmp/never-written-medsynth")
    assert result.returncode == 2 and "Traceback" not in result.stderr and "at least 1" in result.stderr


def test_full_disk_leaves_nothing_behind(tmp_path):
    def limit_file_size():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))

    out = tmp_path / "set"
    result = _run("generate", "-n", "2", "--out", str(out), *SMALL, preexec_fn=limit_file_size)
    assert result.returncode == 2, result.stderr
    assert "Ran out of disk space" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_sigterm_keeps_the_finished_cases_and_says_how_to_resume(tmp_path):
    out = tmp_path / "set"
    proc = subprocess.Popen([*MEDSYNTH, "generate", "-n", "200", "--out", str(out), "--shape", "16", "--spacing", "9"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cases = tmp_path / ".set.partial" / "journal" / "cases"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not list(cases.glob("*.json")):
        time.sleep(0.1)
    assert list(cases.glob("*.json")), "the run never finished a case"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "--resume" in err and "medsynth clean" in err and "Traceback" not in err
    assert not out.exists() and sorted(p.name for p in tmp_path.iterdir()) == [".set.partial"]
    assert list(cases.glob("*.json")), "finished cases are kept for a resume"


def test_unwritable_target_is_refused(tmp_path, capsys, read_only_folder):
    with read_only_folder(tmp_path / "locked") as locked:
        assert main(["generate", "--out", str(locked / "set"), *SMALL]) == 2
        err = capsys.readouterr().err
        assert "Cannot write into" in err and str(locked) in err
        assert list(locked.iterdir()) == []
