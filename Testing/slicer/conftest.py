"""Load the MedSynth scripted module against real MRML (slicer-core) through the one test harness."""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MODULE_DIR = Path(__file__).resolve().parents[2] / "MedSynth"


@pytest.fixture
def medsynth():
    """The ``MedSynth`` module (MedSynth/MedSynth.py) with a fresh ``slicer.mrmlScene``."""
    import harness

    harness.install()
    if str(MODULE_DIR) not in sys.path:
        sys.path.insert(0, str(MODULE_DIR))
    return importlib.import_module("MedSynth")


@pytest.fixture
def reader_study_module(medsynth):
    """The ``MedSynthReaderStudy`` module (MedSynth/MedSynthReaderStudy.py), through the same harness."""
    return importlib.import_module("MedSynthReaderStudy")


@pytest.fixture(scope="session")
def installed_extension(tmp_path_factory) -> Path:
    """The extension built and installed by real cmake (against fakeslicer's stand-in Slicer) into a temporary
    prefix, once per session: the folder that holds MedSynth.py, MedSynthLib/ and the engine wheel."""
    import fakeslicer

    build = tmp_path_factory.mktemp("build")
    configured = fakeslicer.configure(tmp_path_factory.mktemp("fake-slicer"), build)
    assert configured.returncode == 0, configured.stdout + configured.stderr
    cmake = shutil.which("cmake")
    for command in ([cmake, "--build", str(build)], [cmake, "--install", str(build), "--prefix",
                                                     str(build.parent / "install")]):
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
    return build.parent / "install" / fakeslicer.SCRIPTED_MODULES
