"""Generate jobs with stylegan2d's own options on a real engine: ``truncation`` and ``like`` are checked when the
job is submitted (4xx naming the value, the model or the file) and reach the model: psi 0 with a ``like`` slice
gives the projection's image for every seed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from tiny_stylegan2d import untrained_stylegan2d

from MedSynthLib.client import EngineError

pytestmark = pytest.mark.slow  # a real engine and a projection into W


@pytest.fixture(scope="module")
def model(allowed_root, tmp_path_factory) -> Path:
    return untrained_stylegan2d(tmp_path_factory.mktemp("sg2d") / "tiny").resolve()


def _refused(client, params: dict) -> EngineError:
    with pytest.raises(EngineError) as info:
        client.submit("generate", params)
    return info.value


def test_bad_truncation_and_like_are_refused_at_submission(client, model, training_set, tmp_path):
    error = _refused(client, {"model": "phantom", "truncation": 0.5})
    assert error.status == 409 and "'phantom' does not take truncation" in str(error)
    error = _refused(client, {"model": str(model), "truncation": 1.5})
    assert error.status == 422 and "truncation" in str(error)
    error = _refused(client, {"model": str(model), "like": str(tmp_path / "nowhere")})
    assert error.status == 404 and "nowhere" in str(error)
    case = next(p for p in sorted(training_set.iterdir()) if p.is_dir())
    partial = tmp_path / "partial"
    shutil.copytree(case, partial)
    next(partial.glob("*_flair.nii.gz")).unlink()
    error = _refused(client, {"model": str(model), "like": str(partial)})
    assert error.status == 409 and "has no flair" in str(error)
    broken = tmp_path / "broken"
    shutil.copytree(case, broken)
    victim = next(broken.glob("*_t2.nii.gz"))
    victim.write_bytes(victim.read_bytes()[:200])
    error = _refused(client, {"model": str(model), "like": str(broken)})
    assert 400 <= error.status < 500 and victim.name in str(error)


def test_truncation_and_like_reach_the_model(client, model, training_set):
    case = next(p for p in sorted(training_set.iterdir()) if p.is_dir())
    params = {"model": str(model), "n": 2, "seed": 4, "channels": "t1,flair,seg", "truncation": 0.0, "like": str(case)}
    job = client.wait(client.submit("generate", params)["id"], poll=0.2, timeout=300)
    assert job["state"] == "succeeded", job
    assert job["params"]["truncation"] == 0.0 and job["params"]["like"] == str(case.resolve())
    out = Path(job["output_dir"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"]["truncation"] == 0.0 and manifest["parameters"]["like"] is True
    first, second = ([np.asarray(nib.load(out / c["files"]["t1"]).dataobj) for c in manifest["cases"]])
    assert first.shape == (32, 32, 1) and np.array_equal(first, second)  # psi 0: the projection, whatever the seed
    average = client.wait(client.submit("generate", {**params, "n": 1, "like": None})["id"], poll=0.2, timeout=300)
    third = next(Path(average["output_dir"]).glob("*/*_t1.nii.gz"))
    assert not np.array_equal(np.asarray(nib.load(third).dataobj), first)  # w_avg's image is not the projection's
