"""The torch build offered for the NVIDIA driver found (nvidia-smi), and the commands that install it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from MedSynthLib.enginesetup.plan import Wheelhouse, make_plan
from MedSynthLib.enginesetup.torchbuild import (
    TORCH_VERSION,
    build_named,
    detect_driver_version,
    parse_driver_version,
    recommended_build,
)


@pytest.mark.parametrize(("system", "driver", "build"), [
    ("Linux", None, "cpu"),
    ("Linux", (580, 95, 5), "cu130"),
    ("Linux", (580, 65, 6), "cu130"),  # exactly the minimum
    ("Linux", (580, 65, 5), "cu128"),  # one below: CUDA 12 through minor version compatibility
    ("Linux", (535, 183, 1), "cu128"),
    ("Linux", (525, 60, 13), "cu128"),
    ("Linux", (525, 60, 12), "cpu"),  # too old for any CUDA build of this torch
    ("Linux", (470, 256, 2), "cpu"),
    ("Windows", (528, 33), "cu128"),
    ("Windows", (528, 24), "cpu"),
    ("Windows", (581, 15), "cu130"),
    ("Darwin", None, "cpu"),
])
def test_driver_maps_to_the_newest_build_it_runs(system, driver, build):
    chosen, why = recommended_build(driver, system)
    assert chosen.name == build
    assert why.endswith(".")
    if driver is not None and system != "Darwin":
        assert ".".join(map(str, driver)) in why  # the dialog shows the driver it found


def test_index_urls():
    assert recommended_build(None, "Linux")[0].index_url == "https://download.pytorch.org/whl/cpu"
    assert recommended_build(None, "Darwin")[0].index_url is None  # PyPI's build is the macOS one
    assert build_named("cu128", "Linux").index_url == "https://download.pytorch.org/whl/cu128"
    with pytest.raises(ValueError, match="no torch build 'cu999'"):
        build_named("cu999", "Linux")


def test_old_driver_says_what_to_update():
    _build, why = recommended_build((470, 256, 2), "Linux")
    assert "older than 525.60.13" in why and "update the driver" in why


def test_parse_nvidia_smi_output():
    assert parse_driver_version("550.54.14\n550.54.14\n") == (550, 54, 14)  # one line per GPU
    assert parse_driver_version("581.15\n") == (581, 15)
    assert parse_driver_version("NVIDIA-SMI has failed because it couldn't communicate with the driver.") is None


def test_detect_without_nvidia_smi(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi on PATH: a real FileNotFoundError
    assert detect_driver_version() is None


def test_detect_reads_a_real_nvidia_smi(monkeypatch, tmp_path):
    fake = tmp_path / "nvidia-smi"  # a stand-in executable that answers like the real one
    fake.write_text("#!/bin/sh\n[ \"$1\" = --query-gpu=driver_version ] && echo 570.86.10 && exit 0\nexit 9\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert detect_driver_version(subprocess.run) == (570, 86, 10)


@pytest.mark.parametrize(("name", "index"), [("cpu", "https://download.pytorch.org/whl/cpu"),
                                             ("cu130", "https://download.pytorch.org/whl/cu130")])
def test_planned_torch_command(tmp_path, name, index):
    house = Wheelhouse(tmp_path, tmp_path / "medsynth-0.1.0-py3-none-any.whl", tmp_path / "requirements-engine.txt",
                       tmp_path / "requirements-nodeps.txt")
    plan = make_plan(tmp_path / "env", "/usr/bin/python3.12", house, build_named(name, "Linux"))
    steps = {s.name: s.argv for s in plan.steps}
    python = str(tmp_path / "env" / "bin" / "python")
    # deepbet (prepare's default skull strip) after the requirements, as make setup does, before the engine
    assert [s.name for s in plan.steps] == ["venv", "torch", "requirements", "nodeps", "engine", "check"]
    assert steps["venv"] == ("/usr/bin/python3.12", "-m", "venv", str(tmp_path / "env"))
    assert steps["torch"][:4] == (python, "-m", "pip", "install")
    assert steps["torch"][-3:] == (f"torch=={TORCH_VERSION}", "--index-url", index)
    assert steps["requirements"][-2:] == ("-r", str(house.requirements))
    assert steps["nodeps"][:4] == (python, "-m", "pip", "install")
    assert steps["nodeps"][-4:] == ("--no-deps", "--require-hashes", "-r", str(house.nodeps))
    assert steps["engine"][-2:] == ("--no-deps", str(house.wheel))
    assert Path(steps["check"][0]) == plan.python
    assert index in plan.describe() and "about" in plan.describe()
