"""Helpers for the service tests: start and stop real engines, tiny fine-tune parameters, polling."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil
import pytest

from MedSynthLib.launcher import EngineProcess

#: Seconds a cancelled fine-tune gets to write its checkpoint before its process tree is killed.
CANCEL_GRACE = "3"


def start_engine(state_dir: Path, allow: Path, *extra: str) -> EngineProcess:
    """An engine running the code under test: this process's PYTHONPATH is kept (the launcher drops it by default)."""
    return EngineProcess.start(
        sys.executable,
        state_dir=state_dir,
        device="cpu",
        extra_args=["--allow-dir", str(allow), "--cancel-grace", CANCEL_GRACE, *extra],
        timeout=120,
        env=dict(os.environ),
    )


def stop_engine(engine: EngineProcess) -> None:
    """Stop the engine and anything it started (workers run in their own sessions)."""
    try:
        children = psutil.Process(engine.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    engine.stop(timeout=15)
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass


def tiny_finetune(data: Path, out: Path | None = None, **extra) -> dict:
    """Fine-tune parameters that run for minutes unless stopped, checkpointing every few steps."""
    params = {
        "model": "pgan3d",
        "data": str(data),
        "resolution": 8,
        "width": 8,
        "steps": 5000,
        "batch_size": 2,
        "checkpoint_every": 2,
        "log_every": 1,
        "channels": "t1,t1ce,t2,flair,seg",
        "seed": 0,
        "device": "cpu",
    }
    if out is not None:
        params["out"] = str(out)
    params.update(extra)
    return params


def wait_for(client, job_id: str, predicate, timeout: float = 120.0) -> dict:
    """Poll a job until ``predicate(job)`` holds (or it ends); fails the test if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.job(job_id)
        if predicate(job):
            return job
        if job["state"] in ("succeeded", "failed", "cancelled", "interrupted"):
            pytest.fail(f"job {job_id} ended {job['state']} before the awaited condition: {job['error']} {job['log'][-5:]}")
        time.sleep(0.2)
    pytest.fail(f"job {job_id} did not reach the awaited condition in {timeout} s: {client.job(job_id)}")
