"""An engine connected by URL may be on another machine: the panel downloads what it shows into its cache."""

from __future__ import annotations

import hashlib
import time

import pytest

from MedSynthLib.controller import PanelController, first_case_dir

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
