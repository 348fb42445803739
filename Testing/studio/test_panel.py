"""The studio panel (pytest-qt, offscreen): bad input and engine failures end as one sentence, the GUI stays usable."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path

import psutil
import pytest
from PyQt5 import QtCore

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

JOB_LIMIT_MS = 120_000  # only stops a hung test; nothing here is timed


def click(qtbot, button) -> None:
    assert button.isEnabled(), f"{button.objectName()} is disabled: {button.toolTip()}"
    qtbot.mouseClick(button, QtCore.Qt.LeftButton)


def test_without_an_engine_buttons_say_what_is_missing(panel, qtbot):
    assert panel.engineStatusLabel.text() == "Engine not running."
    for button in (panel.generateButton, panel.finetuneButton, panel.exportButton, panel.cancelButton,
                   panel.addSegButton, panel.addCtButton):
        assert not button.isEnabled() and button.toolTip()
    assert "needs the engine" in panel.channelsStatusLabel.text()
    panel.engineUrlEdit.setText("http://127.0.0.1:9")
    click(qtbot, panel.connectButton)
    assert "Cannot reach the MedSynth engine at http://127.0.0.1:9" in panel.errorLabel.text()
    assert panel.startEngineButton.isEnabled() and panel.connectButton.isEnabled()
    panel.enginePythonEdit.setText("/no/such/python")
    click(qtbot, panel.startEngineButton)
    assert "does not exist" in panel.errorLabel.text()


def test_generate_show_and_refuse_bad_folders_with_a_real_engine(panel, qtbot, tmp_path, read_only_folder):
    click(qtbot, panel.startEngineButton)
    assert "running on cpu" in panel.engineStatusLabel.text() and panel.errorLabel.text() == ""
    assert panel.modelComboBox.currentText() == "phantom"

    panel.voxelSizeSpinBox.setValue(8.0)
    panel.channelsEdit.setText("t1,seg")
    with qtbot.waitSignal(panel.caseReady, timeout=JOB_LIMIT_MS) as shown:
        click(qtbot, panel.generateButton)
        assert panel.cancelButton.isEnabled() and not panel.generateButton.isEnabled()
    case = Path(shown.args[0])
    assert sorted(p.name.split("_")[-1] for p in case.iterdir()) == ["seg.nii.gz", "t1.nii.gz"]
    assert panel.progressBar.value() == 100 and "succeeded" in panel.jobStatusLabel.text()

    empty = tmp_path / "empty-data"
    empty.mkdir()
    panel.dataFolderEdit.setText(str(empty))
    click(qtbot, panel.finetuneButton)
    assert "holds no case folders" in panel.errorLabel.text()
    assert panel.generateButton.isEnabled() and not panel.cancelButton.isEnabled()

    with read_only_folder(tmp_path / "locked") as locked:
        panel.exportFolderEdit.setText(str(locked / "set"))
        click(qtbot, panel.exportButton)
        assert "Cannot write into" in panel.errorLabel.text()
    assert panel.exportButton.isEnabled()

    out = Path.home() / f".medsynth-studio-test-{os.getpid()}"
    try:
        panel.exportFolderEdit.setText(str(out))
        panel.layoutComboBox.setCurrentText("nnunet")
        panel.exportChannelsEdit.setText("t1,seg")
        click(qtbot, panel.exportButton)
        assert panel.errorLabel.text() == ""
        qtbot.waitUntil(lambda: "Export job succeeded" in panel.jobStatusLabel.text(), timeout=JOB_LIMIT_MS)
        assert (out / "dataset.json").is_file()
    finally:
        shutil.rmtree(out, ignore_errors=True)

    panel.set_volumes([f"{case.name} t1"])
    assert panel.addSegButton.isEnabled() == any(m["channel"] == "seg" for m in panel.controller.channel_models)
    panel.set_volumes([])
    assert not panel.addSegButton.isEnabled() and "needs a loaded volume" in panel.channelsStatusLabel.text()

    process = panel.controller.session.process
    assert panel.shutdown() == "The engine was stopped." and not process.alive()  # closing the window


def test_engine_dying_mid_job_is_reported_and_the_panel_recovers(panel, qtbot):
    click(qtbot, panel.startEngineButton)
    panel.voxelSizeSpinBox.setValue(6.0)
    panel.countSpinBox.setValue(60)
    click(qtbot, panel.generateButton)
    assert panel.shutdown().startswith("The engine keeps running for the generate job")  # closing mid-job
    panel.timer.start()
    engine = psutil.Process(panel.controller.session.process.pid)
    workers = engine.children(recursive=True)
    os.kill(engine.pid, signal.SIGKILL)
    for worker in workers:  # a crashed engine's orphans would keep the CPU busy after the test
        with contextlib.suppress(psutil.NoSuchProcess):
            worker.kill()
    qtbot.waitUntil(lambda: "during the generate job; start the engine again" in panel.errorLabel.text(),
                    timeout=JOB_LIMIT_MS)
    assert panel.engineStatusLabel.text() == "Engine not running."
    assert panel.startEngineButton.isEnabled() and not panel.cancelButton.isEnabled()
    assert not panel.generateButton.isEnabled()
    click(qtbot, panel.startEngineButton)
    assert "running on cpu" in panel.engineStatusLabel.text() and panel.generateButton.isEnabled()


def test_finetune_shows_losses_and_mosaic_and_can_cancel_and_resume(panel, qtbot, make_phantom_set, tmp_path):
    data = tmp_path / "engine-state" / "data"  # the engine only reads folders under its state folder or the home
    shutil.copytree(make_phantom_set(n=4, shape=(16, 16, 16), spacing=8.0), data)
    click(qtbot, panel.startEngineButton)
    panel.controller.finetune_options = {"resolution": 8, "width": 8, "batch_size": 2, "checkpoint_every": 2,
                                         "log_every": 1}
    panel.baseModelComboBox.setCurrentText("pgan3d")  # an architecture: trains from scratch on the data
    panel.dataFolderEdit.setText(str(data))
    panel.stepsSpinBox.setValue(4)
    click(qtbot, panel.finetuneButton)
    assert panel.errorLabel.text() == "", panel.errorLabel.text()
    qtbot.waitUntil(lambda: len(panel.controller.tracker.losses) >= 2, timeout=JOB_LIMIT_MS)
    click(qtbot, panel.cancelButton)
    qtbot.waitUntil(lambda: "Finetune job cancelled" in panel.jobStatusLabel.text(), timeout=JOB_LIMIT_MS)
    assert panel.generateButton.isEnabled()
    click(qtbot, panel.resumeButton)
    qtbot.waitUntil(lambda: "Finetune job succeeded" in panel.jobStatusLabel.text(), timeout=JOB_LIMIT_MS)
    series = panel.lossChart.series
    assert {"g", "d"} <= set(series) and series["g"][0] == [1, 2, 3, 4]
    assert panel.mosaicLabel.pixmap() is not None and not panel.mosaicLabel.pixmap().isNull()
    assert panel._mosaic_shown.endswith("mosaic_step4.png")
