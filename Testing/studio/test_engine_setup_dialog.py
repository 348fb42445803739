"""The "Set up engine" dialog (MedSynth/Resources/UI/EngineSetup.ui + MedSynthLib.enginesetup.dialog) under PyQt5:
the build offered for the driver, the plan shown before anything runs, a real set-up step, cancel, errors, and a
screenshot under Xvfb."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PyQt5 import QtCore, uic

from MedSynthLib.enginesetup.dialog import EngineSetupDialog

UI = Path(__file__).resolve().parents[2] / "MedSynth" / "Resources" / "UI" / "EngineSetup.ui"
SHOT = Path(__file__).with_name("engine_setup_screenshot.py")


@pytest.fixture
def module_dir(tmp_path):
    """An installed extension's module folder: MedSynthEngine/ with a wheel and the requirements (the wheel's
    content is not used by the steps these tests run; test_engine_setup_install.py installs a real one)."""
    house = tmp_path / "qt-scripted-modules" / "MedSynthEngine"
    house.mkdir(parents=True)
    (house / "medsynth-0.1.0-py3-none-any.whl").write_bytes(b"")
    (house / "requirements-engine.txt").write_text("monai==1.6.1\n")
    (house / "requirements-nodeps.txt").write_text("deepbet==1.0.2 --hash=sha256:00\n")
    return house.parent


def _open(qtbot, module_dir, tmp_path, **kwargs):
    dialog = uic.loadUi(str(UI))
    qtbot.addWidget(dialog)
    ready = []
    driver = EngineSetupDialog(dialog, QtCore.QTimer(), module_dir=module_dir, settings_file=str(tmp_path / "Slicer.ini"),
                               on_ready=ready.append, candidates=[sys.executable], **kwargs)
    assert not dialog.setupButton.isEnabled()  # until the probe (nvidia-smi, interpreters) reported
    qtbot.waitUntil(lambda: not driver.probing.busy, timeout=30000)
    return dialog, driver, ready


def test_offers_the_build_for_the_driver_and_shows_the_plan(qtbot, module_dir, tmp_path):
    dialog, driver, _ready = _open(qtbot, module_dir, tmp_path, driver=(570, 86, 10), system="Linux")
    assert dialog.torchBuildComboBox.currentText().startswith("torch 2.13.0 (NVIDIA GPU, CUDA 12.8")
    assert "NVIDIA driver 570.86.10" in dialog.driverLabel.text()
    assert dialog.envFolderEdit.text() == str(tmp_path / "MedSynth" / "engine-env")
    assert dialog.basePythonEdit.text() == sys.executable
    assert "https://download.pytorch.org/whl/cu128" in dialog.logText.toPlainText()
    dialog.torchBuildComboBox.setCurrentIndex(0)  # the user overrides: CPU
    assert "https://download.pytorch.org/whl/cpu" in dialog.logText.toPlainText()
    assert dialog.setupButton.isEnabled() and not dialog.cancelButton.isEnabled()


@pytest.mark.slow  # a real venv (ensurepip): several seconds
def test_set_up_runs_off_the_gui_thread_and_hands_over_the_interpreter(qtbot, module_dir, tmp_path):
    dialog, driver, ready = _open(qtbot, module_dir, tmp_path, driver=None, steps=["venv"])
    longest, started = 0.0, time.monotonic()
    qtbot.mouseClick(dialog.setupButton, QtCore.Qt.LeftButton)
    assert dialog.cancelButton.isEnabled() and not dialog.setupButton.isEnabled()
    while not ready and time.monotonic() - started < 120:
        before = time.thread_time()  # CPU of the GUI thread: what the dialog's own work costs, not the machine's load
        qtbot.wait(20)  # the event loop runs the dialog's timer
        longest = max(longest, time.thread_time() - before)
    assert ready == [str(tmp_path / "MedSynth" / "engine-env" / "bin" / "python")]
    assert "The engine environment is ready" in dialog.statusLabel.text()
    assert dialog.progressBar.value() == dialog.progressBar.maximum() == 1
    assert longest < 0.05, f"the GUI thread was busy {longest * 1000:.0f} ms in one 20 ms wait"


def test_cancel_from_the_dialog(qtbot, module_dir, tmp_path):
    dialog, driver, ready = _open(qtbot, module_dir, tmp_path, driver=None, steps=["venv"])
    qtbot.mouseClick(dialog.setupButton, QtCore.Qt.LeftButton)
    qtbot.mouseClick(dialog.cancelButton, QtCore.Qt.LeftButton)
    qtbot.waitUntil(lambda: dialog.setupButton.isEnabled(), timeout=30000)
    assert ready == []
    # killed before or after venv made the folder: either way nothing is left behind
    assert re.fullmatch(r"Set-up was cancelled; (nothing was changed|the partial environment .* was removed)\.",
                        dialog.statusLabel.text())
    assert not (tmp_path / "MedSynth" / "engine-env").exists()


def test_missing_wheel_disables_set_up(qtbot, tmp_path):
    dialog, driver, _ready = _open(qtbot, tmp_path, tmp_path, driver=None)
    assert dialog.statusLabel.text().startswith(f"The MedSynth engine wheel is missing from {tmp_path / 'MedSynthEngine'}")
    assert not dialog.setupButton.isEnabled()


@pytest.mark.slow
def test_screenshot_under_xvfb(xvfb_display, module_dir, tmp_path):
    shot = tmp_path / "engine-setup.png"
    env = dict(os.environ, DISPLAY=xvfb_display, QT_QPA_PLATFORM="xcb")
    done = subprocess.run([sys.executable, str(SHOT), str(module_dir), str(tmp_path / "Slicer.ini"), str(shot),
                           "570.86.10"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    pixels = np.asarray(Image.open(shot).convert("L")).astype(int)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 500
    assert (pixels < 80).mean() > 0.005  # text was drawn (not a blank window)
