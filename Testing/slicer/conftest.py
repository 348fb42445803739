"""Load the MedSynth scripted module against real MRML (slicer-core) through the one test harness."""

from __future__ import annotations

import importlib
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
