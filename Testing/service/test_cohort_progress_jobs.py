"""Cohort generate jobs and progress jobs on a real engine over HTTP: results, manifests, one-sentence refusals."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from MedSynthLib.client import EngineError

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out


def _refused(client, kind: str, params: dict) -> str:
    with pytest.raises(EngineError) as info:
        client.submit(kind, params)
    assert 400 <= info.value.status < 500, str(info.value)
    assert str(info.value).endswith(".") and "\n" not in str(info.value)
    return str(info.value)


@pytest.mark.slow
def test_a_generate_job_takes_an_inline_cohort(client, tmp_path):
    cohort = {"strata": [{"name": "left", "count": 1, "tumour": {"volume_ml": [10, 40], "hemisphere": "left"}}, {"name": "healthy", "count": 1, "tumour": "none"}]}
    params = {"model": "phantom", "seed": 2, "shape": [24, 28, 24], "spacing": 6, "cohort": cohort, "out": str(tmp_path / "set")}
    job = client.wait(client.submit("generate", params)["id"], poll=0.2, timeout=300)
    assert job["state"] == "succeeded", (job["error"], job["log"][-5:])
    assert job["result"]["cases"] == 2
    manifest = json.loads((tmp_path / "set" / "manifest.json").read_text())
    assert manifest["parameters"]["cohort"] == "file" and [s["name"] for s in manifest["cohort"]["strata"]] == ["left", "healthy"]
    by_stratum = {c["stratum"]: c["attributes"] for c in manifest["cases"]}
    assert 10 <= by_stratum["left"]["volume_ml"] <= 40 and by_stratum["left"]["hemisphere"] == "left"
    assert by_stratum["healthy"]["tumour"] is False


def test_bad_cohorts_and_progress_params_are_refused_on_submission(client, tmp_path):
    assert "count" in _refused(client, "generate", {"model": "phantom", "cohort": {"strata": [{"name": "a", "count": 0}]}})
    assert "does not exist" in _refused(client, "generate", {"model": "phantom", "cohort": str(tmp_path / "missing.yaml")})
    assert "model" in _refused(client, "progress", {"case": str(tmp_path), "model": "shrink"})
    assert "outside the folders" in _refused(client, "progress", {"case": "/etc", "model": "atrophy"})


@pytest.mark.slow
def test_a_progress_job_writes_an_atrophy_series(client, make_phantom_set, tmp_path):
    set_dir = make_phantom_set(n=1, shape=(32, 36, 32), spacing=5.0, channels="t1,t1ce,t2,flair,seg", tumour=False)
    case = Path(shutil.copytree(next(p for p in set_dir.iterdir() if p.is_dir()), tmp_path / "patient-4711"))
    job = client.submit("progress", {"case": str(case), "model": "atrophy", "months": [0, 6], "profile": "ageing"})
    job = client.wait(job["id"], poll=0.2, timeout=300)
    assert job["state"] == "succeeded", (job["error"], job["log"][-5:])
    out = Path(job["result"]["output_dir"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == "atrophy" and [tp["month"] for tp in manifest["time_points"]] == [0, 6]
    assert any(p.endswith("_field.nii.gz") for p in job["result"]["written"])
    assert str(case) not in json.dumps(manifest) and case.name not in json.dumps(manifest)


@pytest.mark.slow
def test_a_progress_job_writes_a_growth_series(client, make_phantom_set, tmp_path):
    set_dir = make_phantom_set(n=1, shape=(32, 36, 32), spacing=5.0, channels="t1,t1ce,t2,flair,seg", tumour=True)
    case = Path(shutil.copytree(next(p for p in set_dir.iterdir() if p.is_dir()), tmp_path / "patient-0815"))
    job = client.submit("progress", {"case": str(case), "model": "growth", "months": [0, 3, 6], "renderer": "contrast"})  # a lone copied case reads as a scan
    job = client.wait(job["id"], poll=0.2, timeout=300)
    assert job["state"] == "succeeded", (job["error"], job["log"][-5:])
    out = Path(job["result"]["output_dir"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == "growth" and manifest["parameters"]["renderer"] == "contrast"
    points = manifest["time_points"]
    assert [tp["month"] for tp in points] == [0, 3, 6]
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(tp["case"] for tp in points)
    volumes = []
    for tp in points:
        assert set(tp["files"]) == {"t1", "t1ce", "t2", "flair", "seg"} and all((out / f).is_file() for f in tp["files"].values())
        volumes.append(int(np.count_nonzero(np.asanyarray(nib.load(str(out / tp["files"]["seg"])).dataobj))))
    assert all(b >= a for a, b in zip(volumes, volumes[1:], strict=False)) and volumes[-1] > volumes[0], volumes
    for tp in points:
        front = tp["front_speed"]
        assert set(front) == {"white_mm_per_day", "grey_mm_per_day", "white_grey_ratio", "white_voxels", "grey_voxels"}, front
        assert isinstance(front["white_voxels"], int) and isinstance(front["grey_voxels"], int)
        for key in ("white_mm_per_day", "grey_mm_per_day", "white_grey_ratio"):
            assert front[key] is None or (isinstance(front[key], float) and front[key] > 0), (tp["month"], key, front[key])
        if front["white_mm_per_day"] is not None and front["grey_mm_per_day"] is not None:
            assert front["white_grey_ratio"] == pytest.approx(front["white_mm_per_day"] / front["grey_mm_per_day"], rel=0.01)
    assert points[0]["front_speed"]["white_voxels"] == points[0]["front_speed"]["grey_voxels"] == 0  # month 0: nothing crossed yet
    assert points[-1]["front_speed"]["white_voxels"] + points[-1]["front_speed"]["grey_voxels"] > 0  # the front crossed tissue by month 6
