"""Start and stop real engine processes for tests, with this interpreter and this checkout's code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import psutil

from MedSynthLib.launcher import EngineProcess

#: Seconds a cancelled fine-tune gets to write its checkpoint before its process tree is killed.
CANCEL_GRACE = "3"


def start_engine(state_dir: Path, allow: Path, *extra: str) -> EngineProcess:
    """An engine on loopback that may use ``allow`` (and its state folder).

    The launcher drops PYTHONPATH (Slicer's would break the engine's Python); tests keep it, so that an engine
    started from a checkout runs that checkout's code, not whatever copy is installed in the environment.
    """
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
