"""The engine's add-channel jobs over real HTTP: parameters, allowed folders, the shipped seg/CT models, results."""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from medsynth_engine.jobs.params import AddChannelParams, AddTumourParams
from medsynth_engine.jobs.store import JobStore

from MedSynthLib.client import EngineError
from MedSynthLib.conventions import BRATS_LABELS

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out


def test_job_params_match_the_request_fields():
    from medsynth_engine.addchannel import AddChannelRequest
    from medsynth_engine.addtumour import AddTumourRequest

    assert set(AddChannelParams.model_fields) == {f.name for f in dataclasses.fields(AddChannelRequest)}
    # add-tumour takes one more: 'outline' (a drawn region the engine grows a tumour from).
    assert set(AddTumourParams.model_fields) == {f.name for f in dataclasses.fields(AddTumourRequest)} | {"outline"}


@pytest.fixture
def mr_case(make_phantom_set, tmp_path) -> Path:
    """A copy of one phantom case with its four MR sequences only (no seg, no ct)."""
    set_dir = make_phantom_set(n=1, shape=(16, 16, 16), spacing=8.0, channels="t1,t1ce,t2,flair")  # one 64^3 window at 2 mm
    source = next(p for p in set_dir.iterdir() if p.is_dir())
    return Path(shutil.copytree(source, tmp_path / source.name))


def _refused(client, params: dict, status: int) -> str:
    with pytest.raises(EngineError) as info:
        client.submit("add-channel", params)
    assert info.value.status == status, str(info.value)
    message = str(info.value)
    assert message.endswith(".") and "\n" not in message
    return message


def test_bad_add_channel_submissions_are_4xx_with_one_sentence(client, mr_case, tmp_path):
    assert "outside the folders" in _refused(client, {"case": "/etc", "channel": "seg"}, 403)
    assert "absolute" in _refused(client, {"case": "relative/case", "channel": "seg"}, 422)
    assert "does not exist" in _refused(client, {"case": str(tmp_path / "nope"), "channel": "seg"}, 404)
    assert "'channel'" in _refused(client, {"case": str(mr_case), "channel": "pd"}, 422)
    assert "'case'" in _refused(client, {"channel": "ct"}, 422)
    assert "colour" in _refused(client, {"case": str(mr_case), "channel": "ct", "colour": "red"}, 422)
    assert "outside the folders" in _refused(client, {"case": str(mr_case), "channel": "ct", "out": "/etc/x"}, 403)
    assert "tpu" in _refused(client, {"case": str(mr_case), "channel": "ct", "device": "tpu"}, 422)
    (mr_case / f"{mr_case.name}_ct.nii.gz").write_bytes(b"mine")
    assert "already exists" in _refused(client, {"case": str(mr_case), "channel": "ct"}, 409)
    assert (mr_case / f"{mr_case.name}_ct.nii.gz").read_bytes() == b"mine"
    assert not any(job["kind"] == "add-channel" and job["params"].get("case") == str(mr_case) for job in client.jobs())


def test_channel_models_are_listed(client):
    rows = client.channel_models()
    assert {row["channel"] for row in rows} >= {"seg", "ct"}
    assert {"seg-phantom", "mr2ct-phantom"} <= {row["id"] for row in rows}


def test_add_seg_and_ct_jobs_write_the_channels_on_the_case_grid(client, mr_case):
    reference = nib.load(str(mr_case / f"{mr_case.name}_t1.nii.gz"))
    seg_job = client.wait(client.submit("add-channel", {"case": str(mr_case), "channel": "seg"})["id"], poll=0.2, timeout=120)
    assert seg_job["state"] == "succeeded", seg_job["error"]
    assert seg_job["progress"] == 1.0 and Path(seg_job["output_dir"]) == mr_case.resolve()
    written = sorted(Path(p).name for p in seg_job["result"]["written"])
    assert written == [f"{mr_case.name}_seg.nii.gz", f"{mr_case.name}_seg.seg.nrrd"]
    assert sorted(seg_job["result"]["inputs"]) == ["flair", "t1", "t1ce", "t2"]
    seg = nib.load(str(mr_case / f"{mr_case.name}_seg.nii.gz"))
    assert seg.shape == reference.shape and np.allclose(seg.affine, reference.affine, atol=1e-5)
    assert set(np.unique(np.asarray(seg.dataobj)).tolist()) <= {0, *BRATS_LABELS}
    assert f"{mr_case.name}_seg.nii.gz" in client.files(seg_job["id"])  # served like any job output
    result = seg_job["result"]
    assert result["n4"] is True and result["n4_seconds"] > 0  # the seg channel's inputs are bias-corrected by default
    found = f"Tumour found: {result['tumour_ml']:g} ml" if result["tumour_found"] else f"No tumour found ({result['tumour_ml']:g} ml labelled"
    assert seg_job["message"].startswith(found), seg_job["message"]  # what the panel's job line shows

    ct_job = client.wait(client.submit("add-channel", {"case": str(mr_case), "channel": "ct"})["id"], poll=0.2, timeout=120)
    assert ct_job["state"] == "succeeded", ct_job["error"]
    assert ct_job["message"] == "Done." and ct_job["result"]["n4"] is False
    ct = nib.load(str(mr_case / f"{mr_case.name}_ct.nii.gz"))
    assert ct.shape == reference.shape and np.allclose(ct.affine, reference.affine, atol=1e-5)
    values = np.asarray(ct.dataobj, dtype=float)
    assert values.min() >= -1100 and values.max() <= 3100 and values.std() > 10  # Hounsfield units, not a constant


def test_a_case_on_two_grids_is_refused_at_submission_with_the_sentence(client, mr_case):
    t2 = mr_case / f"{mr_case.name}_t2.nii.gz"
    image = nib.load(str(t2))
    nib.save(nib.Nifti1Image(np.asarray(image.dataobj)[:-2], image.affine), str(t2))  # another grid than t1's
    message = _refused(client, {"case": str(mr_case), "channel": "seg"}, 409)
    assert "onto one grid" in message and t2.name in message
    assert not (mr_case / f"{mr_case.name}_seg.nii.gz").exists()
    assert not any(job["kind"] == "add-channel" and job["params"].get("case") == str(mr_case) for job in client.jobs())


def test_a_job_store_from_before_results_gains_the_result_column(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, state TEXT NOT NULL, progress REAL NOT NULL DEFAULT 0,"
        " message TEXT NOT NULL DEFAULT '', log TEXT NOT NULL DEFAULT '[]', error TEXT, params TEXT NOT NULL,"
        " output_dir TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL, metrics TEXT NOT NULL DEFAULT '{}',"
        " worker_pid INTEGER, worker_started REAL);"
        "INSERT INTO jobs (id, kind, state, params, output_dir, created, updated) VALUES ('job-1', 'generate', 'succeeded', '{}', '/x', 1, 1);"
    )
    db.commit()
    db.close()
    store = JobStore(path)
    try:
        assert store.get("job-1")["result"] == {}
        store.update("job-1", result={"written": ["/x/a.nii.gz"]})
        assert store.get("job-1")["result"] == {"written": ["/x/a.nii.gz"]}
    finally:
        store.close()
