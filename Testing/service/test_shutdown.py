"""Stopping by request (POST /shutdown: how the panel stops an engine on Windows) ends running jobs as interrupted."""

from __future__ import annotations

import signal

import pytest
from service_helpers import start_engine, stop_engine, tiny_finetune, wait_for

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out


def _step(job: dict) -> int:
    return int((job.get("metrics") or {}).get("step") or 0)


@pytest.mark.slow
def test_stop_by_request_is_graceful_and_the_fine_tune_can_resume(tmp_path, allowed_root, training_set):
    engine = start_engine(tmp_path / "state", allowed_root)
    try:
        client = engine.client(timeout=60)
        training = client.submit("finetune", tiny_finetune(training_set, tmp_path / "model"))
        wait_for(client, training["id"], lambda j: _step(j) >= 1)
        # Exited by itself (uvicorn re-raises the SIGINT it handled once shut down), not killed by the tree kill.
        assert engine.stop(timeout=60, by_request=True) in (0, -signal.SIGINT)
    finally:
        stop_engine(engine)
    again = start_engine(tmp_path / "state", allowed_root)
    try:
        client = again.client(timeout=60)
        job = client.job(training["id"])
        assert job["state"] == "interrupted", job
    finally:
        stop_engine(again)
