"""The ``medsynth`` command as a shell sees it: a closed stdout ends quietly, Ctrl-C ends with one line and 130.

Real processes and real signals: each test starts ``medsynth`` and talks to it only through pipes and kill().
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

MEDSYNTH_BIN = Path(sys.executable).parent / "medsynth"


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_a_closed_stdout_ends_quietly_with_the_sigpipe_status():
    """``medsynth models | head -1`` where head has already gone: no BrokenPipeError, the status a shell expects (141)."""
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte: every write meets a broken pipe, deterministically
    try:
        done = subprocess.run([str(MEDSYNTH_BIN), "models"], stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert done.returncode == 141
    assert done.stderr == ""


def _default_sigint() -> None:
    """A terminal's Ctrl-C reaches a foreground command; a suite started in the background (``cmd &``) would hand its
    children SIGINT ignored, and Python then never raises KeyboardInterrupt. Give the child the default, as a shell does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_a_run_ends_with_one_line_and_130_and_publishes_nothing(tmp_path):
    out = tmp_path / "set"
    process = subprocess.Popen(
        [str(MEDSYNTH_BIN), "generate", "--model", "phantom", "-n", "500", "--shape", "24", "--spacing", "8", "--out", str(out),
         "--device", "cpu", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_sigint,
    )
    journal = tmp_path / ".set.partial"
    deadline = time.monotonic() + 120
    while not any(journal.rglob("*.nii.gz")) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    lines = _lines(stderr)
    assert len(lines) == 1 and lines[0].startswith("medsynth: interrupted; ") and "--resume" in lines[0], stderr
    assert stdout == ""
    assert not out.exists()  # only the journalled temporary folder, which --resume continues


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to see when torch is being loaded")
def test_ctrl_c_while_starting_ends_with_one_line_and_130():
    """Ctrl-C while the command is still loading torch (inside ``main``): the same one line, no traceback.

    The signal goes once torch's library is mapped into the process; earlier, Python itself is still starting.
    """
    for _ in range(5):  # `models` is quick once torch is in: a signal that lands after it has finished is retried
        process = subprocess.Popen([str(MEDSYNTH_BIN), "models"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   preexec_fn=_default_sigint)
        maps = Path(f"/proc/{process.pid}/maps")
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline and "libtorch" not in maps.read_text():
            time.sleep(0.01)
        if process.poll() is not None:
            continue
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
        if process.returncode == 0:
            continue
        break
    else:
        pytest.fail("medsynth models finished before every one of 5 interrupts")
    assert process.returncode == 130, stderr
    assert _lines(stderr) == ["medsynth: interrupted; nothing was written."]
    assert stdout == ""
