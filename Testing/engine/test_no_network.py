"""Nothing reaches the network at run time: generate, finetune, evaluate, add-channel and a real engine (with its
job worker) run to success in processes where every non-loopback connection and name lookup is refused.

The guard is ``Testing/netguard/sitecustomize.py``, which Python loads at start-up from PYTHONPATH; it records
each process it arms and each attempt it refuses, so an attempt the code swallowed still fails the test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from engine_process import start_engine, stop_engine

pytestmark = pytest.mark.slow

GUARD = Path(__file__).resolve().parents[1] / "netguard"

#: One guarded process runs the four commands through the CLI's main (one torch import instead of four).
COMMANDS = textwrap.dedent("""
    import sys
    from pathlib import Path
    from medsynth_engine.cli import main
    root = Path(sys.argv[1])
    tiny = ["--shape", "24", "--spacing", "8", "--device", "cpu", "--quiet"]
    for seed, name in ((1, "a"), (2, "b")):
        assert main(["generate", "-n", "2", "--seed", str(seed), "--out", str(root / name), *tiny]) == 0
    assert main(["finetune", "--model", "pgan3d", "--data", str(root / "a"), "--out", str(root / "model"), "--steps", "2",
                 "--resolution", "8", "--width", "8", "--batch-size", "2", "--device", "cpu", "--quiet"]) == 0
    assert main(["evaluate", "--synthetic", str(root / "b"), "--real", str(root / "a"), "--out", str(root / "eval"),
                 "--grid", "16", "--diversity-cases", "2", "--quiet"]) in (0, 1)
    case = sorted(p for p in (root / "a").iterdir() if p.is_dir())[0]
    assert main(["add-channel", "--channel", "ct", "--case", str(case), "--out", str(root / "ct"), "--device", "cpu"]) == 0
    print("all ran")
""")


def _guarded_env(log: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(GUARD), os.environ.get("PYTHONPATH", "")]), "MEDSYNTH_NET_LOG": str(log)}


def _lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_the_guard_refuses_and_records_a_connection(tmp_path):
    log = tmp_path / "net.log"
    probe = "import socket\ntry:\n socket.socket().connect(('192.0.2.1', 80))\nexcept ConnectionRefusedError:\n print('refused')"
    done = subprocess.run([sys.executable, "-c", probe], env=_guarded_env(log), capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "refused"
    assert [line.split()[0] for line in _lines(log)] == ["armed", "refused"]


def test_generate_finetune_evaluate_and_add_channel_run_with_the_network_refused(tmp_path):
    log = tmp_path / "net.log"
    done = subprocess.run([sys.executable, "-c", COMMANDS, str(tmp_path)], env=_guarded_env(log), capture_output=True, text=True,
                          timeout=550)
    assert done.returncode == 0 and done.stdout.strip().endswith("all ran"), done.stderr[-2000:]
    assert (tmp_path / "model" / "model.safetensors").is_file() and (tmp_path / "eval" / "metrics.json").is_file()
    lines = _lines(log)
    assert lines and [line for line in lines if not line.startswith("armed")] == []  # armed, and not one attempt


def test_the_engine_and_its_worker_run_a_job_with_the_network_refused(tmp_path, monkeypatch):
    log = tmp_path / "net.log"
    for name, value in _guarded_env(log).items():
        monkeypatch.setenv(name, value)
    engine = start_engine(tmp_path / "state", tmp_path)
    try:
        client = engine.client(timeout=60)
        job = client.wait(client.submit("generate", {"n": 1, "seed": 3, "shape": 24, "spacing": 8, "channels": "t1,seg"})["id"],
                          poll=0.2, timeout=180)
        assert job["state"] == "succeeded", job
        exported = client.wait(client.submit("export", {"job": job["id"]})["id"], poll=0.2, timeout=180)  # in a child process
        assert exported["state"] == "succeeded", exported
    finally:
        stop_engine(engine)
    lines = _lines(log)
    assert [line for line in lines if not line.startswith("armed")] == []  # not one attempt, refused or swallowed
    assert len({line.split()[1] for line in lines}) >= 2  # the engine and the export's worker process
