"""Studio fixtures: a real X server (Xvfb) for VTK views, and a folder nobody may write into."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def xvfb_display():
    """Start Xvfb on a free display number and yield ``":N"`` (VTK renders black on Qt's offscreen platform)."""
    binary = shutil.which("Xvfb")
    if binary is None:
        pytest.fail("Xvfb is not installed; install it (apt-get install xvfb) -- .ci/run does this.")
    for number in range(90, 140):
        if Path(f"/tmp/.X11-unix/X{number}").exists() or Path(f"/tmp/.X{number}-lock").exists():
            continue
        process = subprocess.Popen(
            [binary, f":{number}", "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and process.poll() is None:
            if Path(f"/tmp/.X11-unix/X{number}").exists():
                break
            time.sleep(0.05)
        if process.poll() is None and Path(f"/tmp/.X11-unix/X{number}").exists():
            try:
                yield f":{number}"
            finally:
                process.terminate()
                process.wait(10)
            return
        process.kill()
        process.wait()
    pytest.fail("Could not start Xvfb on any display :90-:139.")


@pytest.fixture
def panel(qtbot, tmp_path):
    """The studio's panel on its own engine (state in the test's folder), stopped at the end."""
    from MedSynthLib.studio.panel import StudioPanel

    widget = StudioPanel(state_dir=str(tmp_path / "engine-state"), poll_ms=100)
    qtbot.addWidget(widget)
    yield widget
    widget.controller.stop_engine(force=True)
