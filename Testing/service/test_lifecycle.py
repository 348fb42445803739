"""Jobs over their whole life on real engines: cancel (process tree killed), queueing per device, resume,
and SIGKILL of the engine followed by a restart with every finished job intact."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import psutil
import pytest
from service_helpers import start_engine, stop_engine, tiny_finetune, wait_for

from MedSynthLib.client import EngineError

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out


def _descendants(pid: int) -> list[psutil.Process]:
    return psutil.Process(pid).children(recursive=True)


def _checkpoint_step(model: Path) -> int:
    """The step the fine-tune's last checkpoint holds (its state.json)."""
    saved = json.loads((model / "checkpoint" / "state.json").read_text())
    return int(saved.get("step", saved.get("steps_done", 0)))


def _step(job: dict) -> int:
    return int(job["metrics"].get("step") or 0)


def test_cancel_a_running_finetune_kills_its_tree_and_resume_continues(engine, client, training_set, tmp_path):
    out = tmp_path / "model"
    job = client.submit("finetune", tiny_finetune(training_set, out))
    running = wait_for(client, job["id"], lambda j: _step(j) >= 2)
    tree = _descendants(engine.pid)
    assert tree, "the fine-tune should run in a child process"
    cancelled = client.cancel(job["id"])
    assert cancelled["state"] == "cancelled", cancelled
    gone, alive = psutil.wait_procs(tree, timeout=15)
    assert not alive, f"processes left after cancel: {alive}"
    assert (out / "model.json").is_file() and (out / "checkpoint").is_dir()
    assert _step(client.job(job["id"])) >= _step(running)
    checkpoint_step = _checkpoint_step(out)
    assert checkpoint_step >= 2

    resumed = client.resume(job["id"])
    assert resumed["id"] == job["id"] and resumed["state"] in ("queued", "running")
    assert resumed["params"]["resume"] is True
    again = wait_for(client, job["id"], lambda j: j["state"] == "running" and "losses" in j["metrics"])
    assert _step(again) > checkpoint_step, "a resumed fine-tune continues from its last checkpoint"
    assert client.cancel(job["id"])["state"] == "cancelled"
    assert not psutil.wait_procs(_descendants(engine.pid), timeout=15)[1]


def test_sigkill_then_restart_keeps_finished_jobs_and_interrupts_running_ones(tmp_path, allowed_root, training_set):
    state = tmp_path / "state"
    first = start_engine(state, allowed_root)
    try:
        client = first.client(timeout=60)
        done = client.wait(client.submit("export", {"source": str(training_set)})["id"], poll=0.2, timeout=120)
        assert done["state"] == "succeeded"
        files = client.files(done["id"])
        training = client.submit("finetune", tiny_finetune(training_set, tmp_path / "model"))
        waiting = client.submit("finetune", tiny_finetune(training_set, tmp_path / "model-2"))
        wait_for(client, training["id"], lambda j: _step(j) >= 2)
        assert client.job(waiting["id"])["state"] == "queued", "one heavy job at a time per device"
        workers = _descendants(first.pid)
        assert workers
        os.kill(first.pid, signal.SIGKILL)
        first.process.wait(10)
    finally:
        stop_engine(first)

    second = start_engine(state, allowed_root)
    try:
        client = second.client(timeout=60)
        assert not psutil.wait_procs(workers, timeout=15)[1], "workers of a killed engine must not linger"
        kept = client.job(done["id"])
        assert kept["state"] == "succeeded" and kept["output_dir"] == done["output_dir"]
        assert client.files(done["id"]) == files
        interrupted = client.job(training["id"])
        assert interrupted["state"] == "interrupted" and "engine stopped" in interrupted["message"]
        assert client.job(waiting["id"])["state"] in ("queued", "running")
        assert client.cancel(waiting["id"])["state"] == "cancelled"

        checkpoint_step = _checkpoint_step(tmp_path / "model")
        assert checkpoint_step >= 2
        assert client.resume(training["id"])["params"]["resume"] is True
        resumed = wait_for(client, training["id"], lambda j: j["state"] == "running" and "losses" in j["metrics"])
        assert _step(resumed) > checkpoint_step, "a resumed fine-tune continues from its last checkpoint"
        assert client.cancel(training["id"])["state"] == "cancelled"
    finally:
        stop_engine(second)


def test_a_second_engine_on_the_same_state_folder_is_refused(engine, allowed_root):
    with pytest.raises(EngineError) as info:
        start_engine(Path(engine.token_file).parent, allowed_root)
    assert "already using" in str(info.value)


def test_a_public_address_needs_allow_remote(tmp_path, allowed_root):
    with pytest.raises(EngineError) as info:
        start_engine(tmp_path / "state", allowed_root, "--host", "0.0.0.0")
    assert "--allow-remote" in str(info.value)
