"""The engine's prepare job over real HTTP: parameters checked on submission, a NIfTI study prepared in a child process."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from medsynth_engine.jobs.kinds.prepare import PrepareParams
from medsynth_engine.prepare.skullstrip import deepbet_available

from MedSynthLib.client import EngineError

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out


def test_job_params_match_the_request_fields():
    from medsynth_engine.prepare import PrepareRequest

    fields = {f.name for f in dataclasses.fields(PrepareRequest)} - {"log", "spacing_mm"}
    assert set(PrepareParams.model_fields) == fields | {"spacing"}


@pytest.fixture
def nifti_study(make_phantom_set, tmp_path) -> Path:
    """A hospital-style NIfTI folder: a T1ce, a FLAIR and a label map, named the way scanners' converters do."""
    set_dir = make_phantom_set(n=1, shape=(24, 24, 24), spacing=6.0, channels="t1,t1ce,t2,flair,seg")
    case = next(p for p in set_dir.iterdir() if p.is_dir())
    study = tmp_path / "export" / "patient_0042"
    study.mkdir(parents=True)
    shutil.copy(case / f"{case.name}_t1ce.nii.gz", study / "0042_T1_post_gd.nii.gz")
    shutil.copy(case / f"{case.name}_flair.nii.gz", study / "0042_flair_ax.nii.gz")
    shutil.copy(case / f"{case.name}_seg.nii.gz", study / "0042_seg.nii.gz")
    return study.parent


def _refused(client, params: dict, status: int) -> str:
    with pytest.raises(EngineError) as info:
        client.submit("prepare", params)
    assert info.value.status == status, str(info.value)
    return str(info.value)


def test_bad_prepare_submissions_are_4xx(client, nifti_study, tmp_path):
    assert "outside the folders" in _refused(client, {"input": "/etc"}, 403)
    assert "does not exist" in _refused(client, {"input": str(tmp_path / "nope")}, 404)
    assert "'atlas'" in _refused(client, {"input": str(nifti_study), "atlas": "sri24"}, 422)
    assert "'colour'" in _refused(client, {"input": str(nifti_study), "colour": "red"}, 422)
    out = tmp_path / "out"
    assert "inside the output folder" in _refused(client, {"input": str(nifti_study), "out": str(out), "keep_key": str(out / "key.json")}, 409)


def test_prepare_inputs_are_checked_at_submission(client, nifti_study, tmp_path):
    """Each refusal names the folder or file, before any job exists (the job list does not grow)."""
    before = len(client.jobs())
    empty = tmp_path / "empty"
    empty.mkdir()
    assert f"The input folder {empty.resolve()} holds no DICOM or NIfTI file" in _refused(client, {"input": str(empty)}, 409)
    (empty / "notes.txt").write_text("a PACS export's index, no images")
    assert f"{empty.resolve()} holds no DICOM or NIfTI file" in _refused(client, {"input": str(empty)}, 409)
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("")
    assert f"{used.resolve()} is not empty" in _refused(client, {"input": str(nifti_study), "out": str(used)}, 409)
    inside = nifti_study / "prepared"
    assert "is inside the input folder" in _refused(client, {"input": str(nifti_study), "out": str(inside)}, 409)
    broken_map = tmp_path / "map.json"
    broken_map.write_text('{"AX T1 POST": "t1ce",')
    assert f"The sequence map {broken_map.resolve()} is not a JSON file" in _refused(client, {"input": str(nifti_study), "sequences": str(broken_map)}, 409)
    assert "does not exist" in _refused(client, {"input": str(nifti_study), "sequences": str(tmp_path / "none.json")}, 404)
    key = tmp_path / "key.json"
    key.write_text("{}")
    assert f"The key file {key.resolve()} already exists" in _refused(client, {"input": str(nifti_study), "keep_key": str(key)}, 409)
    four_d = nifti_study / "patient_0043" / "0043_t1.nii.gz"
    four_d.parent.mkdir()
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8, 3), np.float32), np.eye(4)), four_d)
    assert f"{four_d.resolve()} holds a 4D image" in _refused(client, {"input": str(nifti_study)}, 409)
    assert len(client.jobs()) == before


@pytest.mark.skipif(deepbet_available(), reason="deepbet is installed here: the model path is available")
def test_model_skull_strip_without_deepbet_is_409(client, nifti_study):
    assert "needs deepbet" in _refused(client, {"input": str(nifti_study), "skull_strip": "model"}, 409)


@pytest.mark.slow
def test_prepare_job_writes_cases_and_the_label_follows(client, nifti_study, tmp_path):
    out, key = tmp_path / "prepared", tmp_path / "key.json"
    broken = nifti_study / "patient_0043" / "0043_flair.nii.gz"  # a second study: one 4D file, nothing usable
    broken.parent.mkdir()
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8, 3), np.float32), np.eye(4)), broken)
    params = {"input": str(nifti_study), "out": str(out), "atlas": "none", "skull_strip": "none", "spacing": 3.0, "keep_key": str(key)}
    assert f"{broken.resolve()} holds a 4D image" in _refused(client, params, 409)
    job = client.wait(client.submit("prepare", {**params, "skip_bad": True})["id"], poll=0.2, timeout=180)
    assert job["state"] == "succeeded", job["error"]
    assert len(job["result"]["cases"]) == 1 and Path(job["output_dir"]) == out.resolve()
    assert job["result"]["not_prepared"] == 1 and job["result"]["bad_skipped"] == 2  # the 4D file, its study
    case_id = job["result"]["cases"][0]
    case = out / case_id
    assert sorted(p.name for p in case.glob("*.nii.gz")) == sorted(f"{case_id}_{c}.nii.gz" for c in ("flair", "t1ce", "seg"))
    seg = nib.load(case / f"{case_id}_seg.nii.gz")
    source = nib.load(nifti_study / "patient_0042" / "0042_seg.nii.gz")
    assert seg.header.get_zooms() == (3.0, 3.0, 3.0)
    # Nearest neighbour: the same codes, and about the same tumour volume after resampling from 6 mm to 3 mm.
    assert set(np.unique(np.asarray(seg.dataobj))) == set(np.unique(np.asarray(source.dataobj)))
    volume = lambda image: (np.asarray(image.dataobj) > 0).sum() * np.prod(image.header.get_zooms())  # noqa: E731
    assert abs(volume(seg) - volume(source)) <= 0.2 * volume(source)
    info = json.loads((case / f"{case_id}_prepare.json").read_text())
    assert info["missing"] == ["t1", "t2"] and info["reference"] == "t1ce"
    assert "0042" not in json.dumps(info) and "0042" in key.read_text()
    assert f"{case_id}/{case_id}_qc.png" in client.files(job["id"])
