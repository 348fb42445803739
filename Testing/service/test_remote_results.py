"""An engine connected by URL may be on another machine: the panel downloads what it shows into its cache."""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import pytest

from MedSynthLib.controller import PanelController, first_case_dir
from MedSynthLib.prepare_section import prepared_cases

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_generated_case_is_downloaded_into_the_cache_and_shown_from_there(engine, tmp_path):
    controller = PanelController()
    controller.cache_dir = tmp_path / "cache"
    controller.connect(engine.url, token_file=str(engine.token_file))
    controller.generate(model="phantom", count=2, seed=3, channels="t1,seg", tumour=True, voxel_size=8.0)
    deadline = time.monotonic() + 180  # stops a hung test only
    while controller.tracker.active:
        assert time.monotonic() < deadline, controller.tracker.job
        controller.poll()
        time.sleep(0.2)
    job = controller.take_finished()
    assert job["state"] == "succeeded", job
    local = first_case_dir(job["output_dir"])
    assert local.parent == tmp_path / "cache" / job["id"]
    remote = first_case_dir(controller.session.client.job(job["id"])["output_dir"])  # same machine here: compare
    assert sorted(p.name for p in local.iterdir()) == sorted(p.name for p in remote.iterdir())
    for path in local.iterdir():
        assert _digest(path) == _digest(remote / path.name), path.name
    others = [p for p in (tmp_path / "cache" / job["id"]).iterdir() if p.is_dir() and p != local]
    assert not others  # only the case that is shown, not the whole set


def test_prepared_cases_are_downloaded_with_their_mask_and_qc(engine, make_phantom_set, tmp_path):
    case = next(p for p in make_phantom_set(n=1, shape=(16, 16, 16), spacing=8.0, channels="t1,t1ce,t2,flair,seg").iterdir() if p.is_dir())
    study = tmp_path / "hospital" / "study"
    study.mkdir(parents=True)
    for channel in ("t1ce", "flair"):
        shutil.copy(case / f"{case.name}_{channel}.nii.gz", study / f"scan_{channel}.nii.gz")
    controller = PanelController()
    controller.cache_dir = tmp_path / "cache"
    controller.connect(engine.url, token_file=str(engine.token_file))
    controller.prepare(input=study.parent, out="", atlas="none", skull_strip="none", n4=False, skip_bad=False)
    deadline = time.monotonic() + 180  # stops a hung test only
    while controller.tracker.active:
        assert time.monotonic() < deadline, controller.tracker.job
        controller.poll()
        time.sleep(0.2)
    job = controller.take_finished()
    assert job["state"] == "succeeded", job
    [prepared] = prepared_cases(job)  # read from the local copy
    assert prepared.folder.parent == tmp_path / "cache" / job["id"] and prepared.qc_png.is_file()
    remote_case = Path(controller.session.client.job(job["id"])["output_dir"]) / prepared.case_id
    assert sorted(p.relative_to(prepared.folder) for p in prepared.folder.rglob("*") if p.is_file()) == sorted(
        p.relative_to(remote_case) for p in remote_case.rglob("*") if p.is_file())
    for path in remote_case.glob("*.nii.gz"):
        assert _digest(path) == _digest(prepared.folder / path.name), path.name
