""""Set up engine" says what went wrong in one sentence: no usable Python, pip failing, a full disk, a cancel."""

from __future__ import annotations

import subprocess
import sys
import time
from collections import namedtuple
from pathlib import Path

import pytest

from MedSynthLib.enginesetup.plan import SUPPORTED, SetupError, SetupPlan, Step, find_base_python, find_wheelhouse
from MedSynthLib.enginesetup.runner import SetupRun, check_disk_space, explain_failure
from MedSynthLib.enginesetup.torchbuild import build_named

PY39 = sorted(Path.home().glob(".pyenv/versions/3.9*/bin/python3.9"))


def _plan(env_dir: Path, *steps: Step) -> SetupPlan:
    return SetupPlan(env_dir, sys.executable, build_named("cpu", "Linux"), steps, 1.8)


def test_no_python_found(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    candidates = [str(tmp_path / "missing" / "python3")] + [str(p) for p in PY39]  # and a 3.9 (Slicer 5.8's) is refused
    with pytest.raises(SetupError, match=r"No Python 3.10 to 3.13 with venv was found .* python.org"):
        find_base_python(candidates)


def test_a_supported_python_is_found():
    found = find_base_python([sys.executable])
    if sys.version_info[:2] >= SUPPORTED[0]:
        assert found == sys.executable  # the candidate given first wins
    else:  # Slicer 5.8's 3.9 (the py39 run) is passed over for one on PATH
        version = subprocess.run([found, "-c", "import sys; print(sys.version_info >= (3, 10))"], capture_output=True, text=True)
        assert version.stdout.strip() == "True"


def test_missing_wheel_names_the_folder(tmp_path):
    with pytest.raises(SetupError, match=f"wheel is missing from {tmp_path / 'MedSynthEngine'}: reinstall"):
        find_wheelhouse(tmp_path)


def test_a_wheelhouse_without_the_no_deps_requirements_is_incomplete(tmp_path):
    # without requirements-nodeps.txt the set-up would install no deepbet and prepare would quietly use the atlas
    house = tmp_path / "MedSynthEngine"
    house.mkdir()
    (house / "medsynth-0.1.0-py3-none-any.whl").write_bytes(b"")
    (house / "requirements-engine.txt").write_text("monai==1.6.1\n")
    with pytest.raises(SetupError, match="reinstall the MedSynth extension"):
        find_wheelhouse(tmp_path)
    (house / "requirements-nodeps.txt").write_text("deepbet==1.0.2 --hash=sha256:00\n")
    assert find_wheelhouse(tmp_path).nodeps == house / "requirements-nodeps.txt"


def test_pip_failing_gives_pips_reason_and_removes_the_partial_env(tmp_path):
    env = tmp_path / "env"
    pip = (sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-index", "--find-links",
           str(tmp_path), "--target", str(env / "lib"), "medsynth-no-such-package")
    run = SetupRun(_plan(env, Step("mkdir", "Make the folder", (sys.executable, "-c", f"import os; os.makedirs({str(env)!r})")),
                         Step("engine", "Install the MedSynth engine", pip))).start()
    assert run.wait(timeout=60) == "failed"
    assert run.error.startswith("pip found no matching package (install the medsynth engine): ERROR: No matching "
                                "distribution found for medsynth-no-such-package.")
    assert run.error.endswith(f"the partial environment {env} was removed.")
    assert not env.exists()


def test_existing_environment_is_not_overwritten(tmp_path):
    (tmp_path / "env").mkdir()
    (tmp_path / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    with pytest.raises(SetupError, match="already exists: choose it as an existing environment"):
        SetupRun(_plan(tmp_path / "env"))
    assert (tmp_path / "env" / "pyvenv.cfg").exists()


def test_disk_full_before_and_during(tmp_path):
    usage = namedtuple("usage", "total used free")
    plan = _plan(tmp_path / "env", Step("torch", "Download and install torch", ("true",)))
    with pytest.raises(SetupError, match=r"has 0.5 GB free and the engine needs about 1.8 GB: free some space"):
        check_disk_space(plan, usage=lambda path: usage(10e9, 9.5e9, 0.5e9))
    check_disk_space(plan)  # this disk has room
    pip_output = ["Collecting torch==2.13.0", "ERROR: Could not install packages due to an OSError: [Errno 28] No space left on device"]
    assert explain_failure(plan.steps[0], 1, pip_output, plan) == (
        f"The disk holding {plan.env_dir} is full (download and install torch stopped): free at least 1.8 GB and run "
        "Set up again.")


def test_network_failure_sentence(tmp_path):
    plan = _plan(tmp_path / "env", Step("torch", "Download and install torch", ("true",)))
    output = ["WARNING: Retrying ... NewConnectionError: Failed to establish a new connection: [Errno -3] Temporary failure in name resolution"]
    assert "the package index is not reachable" in explain_failure(plan.steps[0], 1, output, plan)


def test_cancel_stops_the_running_command_and_removes_the_env(tmp_path):
    env = tmp_path / "env"
    sleeper = (sys.executable, "-c", f"import os, time; os.makedirs({str(env)!r}); print('working', flush=True); time.sleep(60)")
    run = SetupRun(_plan(env, Step("torch", "Download and install torch", sleeper),
                         Step("engine", "Never reached", (sys.executable, "-c", "print('reached')")))).start()
    deadline = time.monotonic() + 30
    while "working" not in run.poll().lines and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    run.cancel()
    assert run.wait(timeout=20) == "cancelled"
    assert time.monotonic() - started < 10  # the sleeper was killed, not waited for
    assert run.error == f"Set-up was cancelled; the partial environment {env} was removed."
    assert not env.exists()
