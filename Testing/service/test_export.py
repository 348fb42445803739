"""The export job's core (``setexport.export_set``) and ``medsynth export``, in-process on real phantom sets."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
from medsynth_engine.errors import MedSynthError
from medsynth_engine.nifti_io import NEUTRAL_DESCRIPTION
from medsynth_engine.setexport import export_set

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out


def _volumes_by_seed(folder) -> dict[int, dict[str, np.ndarray]]:
    manifest = json.loads((folder / "manifest.json").read_text())
    return {
        case["seed"]: {ch: np.asarray(nib.load(folder / rel).dataobj) for ch, rel in case["files"].items()}
        for case in manifest["cases"]
    }


def test_brats_to_nnunet_and_back_keeps_voxels_labels_seeds_and_model(make_phantom_set, tmp_path):
    source = make_phantom_set(n=2)
    nnunet = export_set(source, tmp_path / "nnunet", layout="nnunet")
    dataset = json.loads((nnunet / "dataset.json").read_text())
    assert dataset["numTraining"] == 2 and len(dataset["channel_names"]) == 4
    labels = np.unique(np.concatenate([np.asarray(nib.load(p).dataobj).ravel() for p in (nnunet / "labelsTr").glob("*.nii.gz")]))
    assert set(labels.tolist()) <= {0, 1, 2, 3}
    back = export_set(nnunet, tmp_path / "brats", layout="brats")
    original, returned = _volumes_by_seed(source), _volumes_by_seed(back)
    assert original.keys() == returned.keys()
    for seed, volumes in original.items():
        for channel, array in volumes.items():
            np.testing.assert_array_equal(returned[seed][channel], array)
    src_manifest = json.loads((source / "manifest.json").read_text())
    manifest = json.loads((back / "manifest.json").read_text())
    assert manifest["model"] == src_manifest["model"] and manifest["parameters"] == src_manifest["parameters"]
    assert manifest["export"]["source_layout"] == "nnunet"
    src_ids = {c["id"] for c in src_manifest["cases"]}
    assert not src_ids & {c["id"] for c in manifest["cases"]}, "exported cases get new random ids"


def test_channel_subset_and_anonymous_headers(make_phantom_set, tmp_path):
    out = export_set(make_phantom_set(n=2), tmp_path / "sub", channels="flair,seg")
    files = sorted(p.name.split("_")[-1] for p in out.glob("*/*.nii.gz"))
    assert files == ["flair.nii.gz", "flair.nii.gz", "seg.nii.gz", "seg.nii.gz"]
    header = nib.load(next(out.glob("*/*_flair.nii.gz"))).header
    assert header["descrip"].tobytes().rstrip(b"\0") == NEUTRAL_DESCRIPTION and not header.extensions


@pytest.mark.parametrize(
    "kwargs,words",
    [
        ({"channels": "ct"}, "no ct channel"),
        ({"channels": "t9"}, "t9"),
        ({"layout": "nnunet", "channels": "t1"}, "seg"),
        ({"layout": "zip"}, "layout"),
    ],
)
def test_impossible_exports_write_nothing(make_phantom_set, tmp_path, kwargs, words):
    with pytest.raises(MedSynthError, match=words):
        export_set(make_phantom_set(n=2), tmp_path / "out", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_an_incomplete_or_foreign_source_is_refused(make_phantom_set, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(make_phantom_set(n=2), broken)
    next(broken.glob("*/*_t2.nii.gz")).unlink()
    with pytest.raises(MedSynthError, match="lacks its t2 file"):
        export_set(broken, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.partial*"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(MedSynthError, match="no manifest.json"):
        export_set(tmp_path / "plain", tmp_path / "out")
    (tmp_path / "plain" / "manifest.json").write_text('{"format": "something else"}')
    with pytest.raises(MedSynthError, match="does not describe a MedSynth set"):
        export_set(tmp_path / "plain", tmp_path / "out")


def test_a_manifest_path_leaving_the_set_is_refused(make_phantom_set, tmp_path):
    crafted = tmp_path / "crafted"
    shutil.copytree(make_phantom_set(n=2), crafted)
    manifest = json.loads((crafted / "manifest.json").read_text())
    manifest["cases"][0]["files"]["t1"] = "../../outside.nii.gz"
    (crafted / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(MedSynthError, match="lacks its t1 file"):
        export_set(crafted, tmp_path / "out")


def test_medsynth_export_command(make_phantom_set, tmp_path):
    out = tmp_path / "nn"
    result = subprocess.run(
        [sys.executable, "-m", "medsynth_engine.cli", "export", "--source", str(make_phantom_set(n=2)), "--out", str(out),
         "--layout", "nnunet", "--channels", "t1,seg", "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out) and len(list((out / "imagesTr").glob("*.nii.gz"))) == 2
    again = subprocess.run(
        [sys.executable, "-m", "medsynth_engine.cli", "export", "--source", str(make_phantom_set(n=2)), "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert again.returncode == 2 and "not empty" in again.stderr and again.stderr.count("\n") == 1
