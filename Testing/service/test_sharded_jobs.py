"""The engine's `--gpus`: a generate job shares its cases over one worker process per device (here two CPU workers)
and writes exactly the files of a one-process run; its progress says cases done, rate and ETA, as the CLI's bar."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from medsynth_engine.generate import GenerateRequest, generate_set
from service_helpers import start_engine, stop_engine

pytestmark = pytest.mark.slow  # a real engine and its worker processes

PARAMS = {"n": 4, "seed": 5, "channels": "t1,seg", "shape": 32, "spacing": 6}


def checksums(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_generate_job_shares_its_cases_over_the_engines_devices(tmp_path, allowed_root, registry):
    reference = GenerateRequest(model="phantom", n=4, seed=5, out=tmp_path / "one", channels="t1,seg", shape=(32,) * 3,
                                spacing=(6.0,) * 3, device="cpu")
    one = checksums(generate_set(reference, registry))
    out = allowed_root / "sharded" / "set"
    engine = start_engine(tmp_path / "state", allowed_root, "--gpus", "cpu,cpu")
    try:
        client = engine.client(timeout=60)
        job = client.submit("generate", {**PARAMS, "out": str(out)})
        done = client.wait(job["id"], poll=0.2, timeout=300)
    finally:
        stop_engine(engine)
    assert done["state"] == "succeeded", done
    assert checksums(out) == one
    assert "Sharing 4 cases over 2 worker processes (cpu, cpu)." in done["log"]
    assert done["metrics"]["step"] == done["metrics"]["total"] == 4
    assert done["metrics"]["cases_per_hour"] > 0 and any(line.startswith("case 4/4, ") and "cases/h" in line for line in done["log"])
    assert not list(out.parent.glob(".*"))
