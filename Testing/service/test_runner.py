"""The job runner in-process (no HTTP): warm models across jobs, one job at a time in a lane, restart recovery."""

from __future__ import annotations

import time

import pytest
from medsynth_engine.jobs.paths import PathPolicy
from medsynth_engine.jobs.runner import JobRunner
from medsynth_engine.jobs.store import TERMINAL_STATES, JobStore
from medsynth_engine.registry import ModelRegistry

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

TINY = {"n": 1, "shape": 16, "spacing": 8, "channels": "t1,seg"}


@pytest.fixture
def runner(tmp_path, registry):
    shared = ModelRegistry()
    shared.register("phantom", lambda: registry.get("phantom"))  # the session's phantom, atlas already loaded
    store = JobStore(tmp_path / "jobs.sqlite")
    runner = JobRunner(store, tmp_path / "jobs", shared, PathPolicy([tmp_path]), default_device="cpu")
    yield runner
    runner.shutdown()
    store.close()


def _wait(runner: JobRunner, job_id: str, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = runner.get(job_id)
        if job["state"] in TERMINAL_STATES:
            return job
        time.sleep(0.05)
    pytest.fail(f"job {job_id} did not end: {runner.get(job_id)}")


def test_generate_jobs_share_one_loaded_model_and_run_one_at_a_time(runner):
    jobs = [runner.submit("generate", {**TINY, "seed": seed}) for seed in range(3)]
    assert [j["state"] for j in jobs] == ["queued"] * 3
    running_together = 0
    while any(runner.get(j["id"])["state"] not in TERMINAL_STATES for j in jobs):
        running_together = max(running_together, sum(runner.get(j["id"])["state"] == "running" for j in jobs))
        time.sleep(0.01)
    assert all(_wait(runner, j["id"])["state"] == "succeeded" for j in jobs)
    assert running_together <= 1, "generate jobs share one lane"
    assert runner.cache.loads == 1, "the model is loaded once and stays warm"
    assert [row["warm"] for row in runner.cache.describe() if row["id"] == "phantom"] == [True]


def _died_while_running(store: JobStore, out) -> dict:
    """A generate job whose engine died mid-run: its record still says running."""
    params = {**TINY, "model": "phantom", "seed": 0, "channels": ["t1", "seg"], "layout": "brats", "shape": [16] * 3,
              "spacing": [8.0] * 3, "tumour": True, "device": "cpu", "out": str(out), "mask": None}
    job = store.create("generate", params, out)
    store.update(job["id"], state="running")
    return job


def test_a_restart_without_requeue_interrupts_running_jobs_keeps_their_journal_and_finished_jobs(tmp_path, registry):
    store = JobStore(tmp_path / "jobs.sqlite")
    running = _died_while_running(store, tmp_path / "a")
    (tmp_path / ".a.partial").mkdir()
    done = store.create("generate", {}, tmp_path / "b")
    store.update(done["id"], state="succeeded", progress=1.0)
    unknown = store.create("teleport", {}, tmp_path / "c")  # queued by an engine with a kind this one lacks
    store.close()

    shared = ModelRegistry()
    shared.register("phantom", lambda: registry.get("phantom"))
    store = JobStore(tmp_path / "jobs.sqlite")
    runner = JobRunner(store, tmp_path / "jobs", shared, PathPolicy([tmp_path]), default_device="cpu", requeue_interrupted=False)
    try:
        job = runner.get(running["id"])
        assert job["state"] == "interrupted" and "resume it" in job["message"]
        assert (tmp_path / ".a.partial").is_dir(), "the journal of an interrupted generate is kept for its resume"
        assert runner.get(done["id"])["state"] == "succeeded" and runner.get(done["id"])["progress"] == 1.0
        assert runner.get(unknown["id"])["state"] == "failed" and "cannot run teleport jobs" in runner.get(unknown["id"])["error"]
    finally:
        runner.shutdown()
        store.close()


def test_submit_never_loads_a_model_and_the_models_limits_fail_the_job(runner):
    """A model loads when its job starts, in the job's lane, not in the submitting (HTTP request) thread."""
    job = runner.submit("generate", {**TINY, "shape": 2})
    assert runner.cache.loads == 0 and runner.cache.loaded() == []
    done = _wait(runner, job["id"])
    assert done["state"] == "failed" and "phantom makes grids of" in done["error"]
    assert runner.cache.loads == 1
    assert not list((runner.jobs_dir / job["id"]).glob("output*")), "a refused grid writes nothing"


def test_a_restart_queues_a_generate_that_was_running_again_to_continue(tmp_path, registry):
    store = JobStore(tmp_path / "jobs.sqlite")
    running = _died_while_running(store, tmp_path / "a")
    store.close()

    shared = ModelRegistry()
    shared.register("phantom", lambda: registry.get("phantom"))
    store = JobStore(tmp_path / "jobs.sqlite")
    runner = JobRunner(store, tmp_path / "jobs", shared, PathPolicy([tmp_path]), default_device="cpu")
    try:
        job = _wait(runner, running["id"])
        assert job["state"] == "succeeded" and job["params"]["resume"] is True
        assert (tmp_path / "a" / "manifest.json").is_file()
    finally:
        runner.shutdown()
        store.close()
