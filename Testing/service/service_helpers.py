"""Helpers for the service tests: start and stop real engines, tiny fine-tune parameters, polling."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from engine_process import CANCEL_GRACE, start_engine, stop_engine

__all__ = ["CANCEL_GRACE", "start_engine", "stop_engine", "tiny_finetune", "wait_for"]


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
