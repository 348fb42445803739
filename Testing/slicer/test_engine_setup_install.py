"""The extension's install tree holds what "Set up engine" needs, and the set-up makes a working engine environment.

Real cmake (against the stand-in Slicer of fakeslicer.py) builds the engine wheel and installs the extension into a
temporary prefix; a real venv is created from this Python and the shipped wheel installed into it by real pip with
``--no-index --find-links`` (offline). torch and the pinned requirements are not installed (gigabytes, online): the
set-up runs its venv, engine and check steps; the torch commands are checked in test_enginesetup_torchbuild.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile

import fakeslicer
import pytest

from MedSynthLib.enginesetup.plan import MARKER, find_base_python, find_wheelhouse, make_plan
from MedSynthLib.enginesetup.runner import SetupRun
from MedSynthLib.enginesetup.torchbuild import build_named

pytestmark = pytest.mark.slow
SCRIPTED = "lib/Slicer-5.10/qt-scripted-modules"


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    build = tmp_path_factory.mktemp("build")
    configured = fakeslicer.configure(tmp_path_factory.mktemp("fake-slicer"), build)
    assert configured.returncode == 0, configured.stdout + configured.stderr
    cmake = shutil.which("cmake")
    for command in ([cmake, "--build", str(build)], [cmake, "--install", str(build), "--prefix",
                                                     str(build.parent / "install")]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    return build.parent / "install" / SCRIPTED


def test_install_tree_holds_the_engine_wheel_and_requirements(installed):
    house = find_wheelhouse(installed)  # where MedSynth.py looks: beside itself
    names = zipfile.ZipFile(house.wheel).namelist()
    assert "medsynth_engine/engine_cli.py" in names
    assert any(n.startswith("medsynth_engine/weights/seg-phantom/") and n.endswith(".safetensors") for n in names)
    pins = [line for line in house.requirements.read_text().splitlines() if line and not line.startswith("#")]
    packages = {line.split("==")[0] for line in pins}
    assert {"monai", "SimpleITK", "fastapi", "uvicorn", "slicerio"} <= packages
    # torch is chosen by the set-up; Slicer's own side (Qt, VTK, MRML) never goes into the engine environment
    assert not packages & {"torch", "PyQt5", "vtk", "slicer-core"}
    # and nothing in the install tree is a package for Slicer's own site-packages
    assert not list(installed.parent.rglob("site-packages"))


def test_set_up_installs_the_shipped_wheel_into_a_new_venv(installed, tmp_path):
    house = find_wheelhouse(installed)
    base = find_base_python([sys.executable])
    plan = make_plan(tmp_path / "settings" / "MedSynth" / "engine-env", base, house, build_named("cpu"),
                     pip_options=["--no-index", "--find-links", str(house.folder)])
    run = SetupRun(plan, steps=["venv", "engine", "check"]).start()
    assert run.wait(timeout=240) == "succeeded", run.error
    lines = run.poll().lines
    assert lines[0] == "[1/3] Create the engine's own Python environment"
    # the check step imported the engine from the new environment (not from this checkout or this interpreter)
    assert any(line.startswith(f"medsynth 0.1.0 from {plan.env_dir}") for line in lines), lines
    assert json.loads((plan.env_dir / MARKER).read_text())["torch"] == "cpu"
    assert (plan.env_dir / "pyvenv.cfg").read_text().count("include-system-site-packages = false") == 1
