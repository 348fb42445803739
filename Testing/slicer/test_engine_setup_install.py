"""The extension's install tree holds what "Set up engine" needs, and nothing for Slicer's own Python.

Real cmake (against the stand-in Slicer of fakeslicer.py) builds the engine wheel and installs the extension into a
temporary prefix (the session fixture ``installed_extension``). The set-up itself, from that wheel into a new venv
with real pip offline, runs through the panel's "Set up..." dialog in test_module_widget_engine.py.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from MedSynthLib.enginesetup.plan import find_wheelhouse

pytestmark = pytest.mark.slow


def test_install_tree_holds_the_engine_wheel_and_requirements(installed_extension):
    house = find_wheelhouse(installed_extension)  # where MedSynth.py looks: beside itself
    names = zipfile.ZipFile(house.wheel).namelist()
    assert "medsynth_engine/engine_cli.py" in names
    assert any(n.startswith("medsynth_engine/weights/seg-phantom/") and n.endswith(".safetensors") for n in names)
    pins = [line for line in house.requirements.read_text().splitlines() if line and not line.startswith("#")]
    packages = {line.split("==")[0] for line in pins}
    assert {"monai", "SimpleITK", "fastapi", "uvicorn", "slicerio"} <= packages
    # torch is chosen by the set-up; Slicer's own side (Qt, VTK, MRML) never goes into the engine environment
    assert not packages & {"torch", "PyQt5", "vtk", "slicer-core"}
    # deepbet's weights, pinned by hash as make setup installs them (the set-up's no-deps step reads this file)
    shipped = house.nodeps.read_text()
    assert shipped == (Path(__file__).resolve().parents[2] / "requirements-nodeps.txt").read_text()
    assert any(line.startswith("deepbet==") and "--hash=sha256:" in line for line in shipped.splitlines())
    # and nothing in the install tree is a package for Slicer's own site-packages
    assert not list(installed_extension.parent.rglob("site-packages"))
