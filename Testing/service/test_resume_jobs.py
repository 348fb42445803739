"""Generate jobs continue where they stopped: after a SIGKILL of the engine (re-queued on restart) and after a
cancel (POST /jobs/{id}/resume), with exactly the files of an uninterrupted run."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path

import pytest
from medsynth_engine.generate import GenerateRequest, generate_set
from medsynth_engine.journal import temporary_folder
from service_helpers import start_engine, stop_engine, wait_for

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

PARAMS = {"n": 6, "seed": 11, "channels": "t1,flair,seg", "shape": 16, "spacing": 9, "device": "cpu"}


def checksums(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def finished_cases(out: Path) -> int:
    return len(list((temporary_folder(out) / "journal" / "cases").glob("*.json")))


def wait_for_cases(out: Path, count: int, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while finished_cases(out) < count and time.monotonic() < deadline:
        time.sleep(0.02)
    assert finished_cases(out) >= count, f"the job did not finish {count} cases in {timeout} s"


def _reference(tmp_path_factory, registry, n: int) -> dict[str, str]:
    out = tmp_path_factory.mktemp("reference") / "set"
    request = GenerateRequest(model="phantom", n=n, seed=11, out=out, channels="t1,flair,seg", shape=(16,) * 3, spacing=(9.0,) * 3, device="cpu")
    return checksums(generate_set(request, registry))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, registry) -> dict[str, str]:
    return _reference(tmp_path_factory, registry, PARAMS["n"])


#: Long enough that a cancel sent after two cases arrives while the job still runs, even on an idle machine.
LONG = {**PARAMS, "n": 40}


@pytest.fixture(scope="module")
def uninterrupted_long(tmp_path_factory, registry) -> dict[str, str]:
    return _reference(tmp_path_factory, registry, LONG["n"])


@pytest.mark.slow
def test_a_generate_job_killed_with_its_engine_continues_after_the_restart(tmp_path, allowed_root, uninterrupted):
    state, out = tmp_path / "state", tmp_path / "set"
    first = start_engine(state, allowed_root)
    try:
        client = first.client(timeout=60)
        job = client.submit("generate", {**PARAMS, "out": str(out)})
        wait_for_cases(out, 2)
        os.kill(first.pid, signal.SIGKILL)
        first.process.wait(10)
    finally:
        stop_engine(first)
    kept = finished_cases(out)
    assert 2 <= kept < 6 and not out.exists()

    second = start_engine(state, allowed_root)
    try:
        client = second.client(timeout=60)
        done = client.wait(job["id"], poll=0.2, timeout=240)
        assert done["state"] == "succeeded", done
        assert done["params"]["resume"] is True
        assert f"Continued from case {kept + 1} of 6" in " ".join(done["log"])
        assert done["metrics"]["continued_from"] == kept + 1
        assert checksums(out) == uninterrupted, "the set equals an uninterrupted run's, file for file"
        assert sorted(p.name for p in tmp_path.iterdir()) == ["set", "state"]
    finally:
        stop_engine(second)


@pytest.mark.slow
def test_a_cancelled_generate_job_keeps_its_cases_and_resume_finishes_it(client, tmp_path, uninterrupted_long):
    out = tmp_path / "set"
    job = client.submit("generate", {**LONG, "out": str(out)})
    wait_for(client, job["id"], lambda j: int(j["metrics"].get("step") or 0) >= 2, timeout=240)
    cancelled = client.cancel(job["id"])
    cancelled = client.wait(job["id"], poll=0.2, timeout=60)
    assert cancelled["state"] == "cancelled" and not out.exists()
    kept = finished_cases(out)
    assert kept >= 2, "the cases finished before the cancel are kept in the journal"

    resumed = client.resume(job["id"])
    assert resumed["state"] in ("queued", "running") and resumed["params"]["resume"] is True
    done = client.wait(job["id"], poll=0.2, timeout=240)
    assert done["state"] == "succeeded", done
    assert checksums(out) == uninterrupted_long
    assert f"(continued from case {kept + 1})" in done["message"] or done["metrics"]["continued_from"] == kept + 1
