"""Stopping an engine that does not answer its shutdown request: after the grace period its whole process tree dies.

The graceful half (POST /shutdown, jobs end as interrupted and resume) runs against a real engine in
Testing/service/test_shutdown.py; here the engine is a real process tree that ignores everything but a kill, as a
hung engine would, so the fallback is exercised without waiting for a real hang.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from MedSynthLib import launcher
from MedSynthLib.launcher import EngineProcess

HUNG_ENGINE = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"])
print(child.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie (exited, not yet reaped by its dead parent) is not alive
        return stat.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.skipif(sys.platform == "win32", reason="the process-tree check reads /proc")
def test_an_engine_that_ignores_the_shutdown_request_is_killed_with_its_workers(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", HUNG_ENGINE], stdout=subprocess.PIPE, text=True,
                               creationflags=launcher._NO_CONSOLE)
    worker = int(process.stdout.readline())
    token = tmp_path / "engine.token"
    token.write_text("t")
    engine = EngineProcess(process, "http://127.0.0.1:9", token, process.pid, tmp_path / "engine.log")  # nobody answers
    began = time.monotonic()
    code = engine.stop(timeout=1.0, by_request=True)
    assert code != 0 and not engine.alive()
    assert 1.0 <= time.monotonic() - began < 15  # waited the grace period, then killed
    deadline = time.monotonic() + 5
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker), "the engine's worker process survived the tree kill"
    process.stdout.close()


def test_the_engine_is_started_without_a_console_window(monkeypatch, tmp_path):
    """Popen gets CREATE_NO_WINDOW and a new process group on Windows (0 elsewhere, where they do not exist)."""
    flags = []
    real_popen = subprocess.Popen

    def popen(*args, **kwargs):
        flags.append(kwargs.get("creationflags"))
        return real_popen(*args, **kwargs)

    monkeypatch.setattr(launcher.subprocess, "Popen", popen)
    with pytest.raises(launcher.EngineError, match="exited during start-up"):
        EngineProcess.start("/bin/false" if os.name != "nt" else "cmd.exe /c exit 1", state_dir=tmp_path / "state")
    expected = subprocess.CREATE_NO_WINDOW | subprocess.CREATE_NEW_PROCESS_GROUP if os.name == "nt" else 0
    assert flags == [expected] == [launcher._NO_CONSOLE]
