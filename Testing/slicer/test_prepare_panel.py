"""The panel's Prepare section as a user drives it: studies picked from Slicer's DICOM database, prepared by a real
engine, each case shown in the scene with its brain mask and listed with its QC verdict and mosaic.

``MedSynthWidget`` is made with its real .ui through the PythonQt shim over real MRML; ``slicer.dicomDatabase`` is
the strict ctkDICOMDatabase stand-in (dicom_database.py) over real DICOM files; the engine is a real process started
through the panel's controller with this checkout's code (the launcher would drop PYTHONPATH).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
import pytest
from dicom_database import DicomDatabase
from prepare_study import write_small_study

pytestmark = pytest.mark.slow  # a real engine and a prepare run

LIMIT_S = 240.0  # stops a hung test only


@pytest.fixture
def panel(medsynth):
    import slicer

    parent = slicer.qSlicerScriptedLoadableModuleWidget()
    widget = medsynth.MedSynthWidget(parent)
    widget.setup()
    parent._entered = True
    widget.enter()
    yield widget
    widget.cleanup()
    widget.logic.controller.stop_engine(force=True)


def _until(condition, describe) -> None:
    import slicer

    deadline = time.monotonic() + LIMIT_S
    while not condition():
        assert time.monotonic() < deadline, describe()
        slicer.app._qapp.processEvents()
        time.sleep(0.02)


def test_studies_from_the_dicom_database_are_prepared_and_shown_with_mask_and_qc(panel, tmp_path, monkeypatch):
    import nibabel as nib
    import slicer

    ui, logic = panel.ui, panel.logic
    assert not ui.prepareButton.enabled and ui.prepareButton.toolTip == "Start or connect the engine first."
    monkeypatch.setattr(slicer, "dicomDatabase", DicomDatabase(None), raising=False)
    ui.prepareListStudiesButton.click()
    assert ui.errorLabel.text.startswith("Slicer's DICOM database is not open")
    monkeypatch.setattr(slicer, "dicomDatabase", DicomDatabase(write_small_study(tmp_path / "slicer-dicom" / "s1")), raising=False)
    ui.prepareListStudiesButton.click()
    assert ui.prepareStudiesList.count == 1 and ui.prepareStudiesList.item(0).text() == "Doe Jane Quincy - 20240315"

    logic.controller.start_engine(sys.executable, str(tmp_path / "engine-state"), "cpu", env=dict(os.environ),
                                  allowed_dirs=(str(tmp_path),))
    panel.updateGUI()
    assert ui.prepareButton.enabled
    ui.prepareStudiesList.item(0).setSelected(True)
    out = tmp_path / "prepared"
    ui.prepareOutEdit.text = str(out)
    ui.prepareAtlasComboBox.setCurrentText("none")
    ui.prepareSkullStripComboBox.setCurrentText("atlas")
    ui.prepareSkipBadCheckBox.checked = True
    parameters = panel._parameterNode
    assert (parameters.prepareOut, parameters.prepareAtlas, parameters.prepareSkullStrip, parameters.prepareSkipBad) == (
        str(out), "none", "atlas", True)
    ui.prepareButton.click()
    _until(lambda: logic.loadedCases and ui.prepareCasesList.count == 1, lambda: f"{ui.jobStatusLabel.text} {ui.errorLabel.text}")
    job = logic.controller.tracker.job
    assert job["kind"] == "prepare" and job["state"] == "succeeded" and not ui.errorLabel.text
    assert ui.jobStatusLabel.text.startswith("Prepare job succeeded") and ui.progressBar.value == 100  # the shared job bar
    staged = job["params"]["input"]
    assert staged.startswith(str(logic.controller.work_dir)) and len(list(os.scandir(staged))) == 1  # one study

    case_id = job["result"]["cases"][0]
    case = logic.loadedCases[0]
    assert case.case_id == case_id and set(case.volumes) == {"t1ce", "flair"}
    assert case.mask.IsA("vtkMRMLLabelMapVolumeNode") and case.mask.GetName() == f"{case_id} mask"
    on_disk = np.asarray(nib.load(out / case_id / f"{case_id}_mask.nii.gz").dataobj)
    shown = slicer.util.arrayFromVolume(case.mask)
    assert shown.shape == on_disk.shape[::-1] and shown.sum() == on_disk.sum() > 0
    flags = job["result"]["flagged"]
    expected = f"{case_id}: FLAGGED - " if case_id in flags else f"{case_id}: QC passed"
    assert ui.prepareCasesList.item(0).text().startswith(expected)
    assert ui.prepareCasesList.currentRow == 0 and not ui.prepareQcLabel.pixmap.isNull()  # the QC mosaic
