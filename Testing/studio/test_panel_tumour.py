"""The studio's Channels and Tumour sections (pytest-qt, offscreen) with a real engine and the shipped models."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PyQt5 import QtCore

from MedSynthLib.conventions import BRATS_LABELS
from MedSynthLib.studio.panel import MASK_FILE, SPHERE
from MedSynthLib.studio.volumes import read_case

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

JOB_LIMIT_MS = 240_000  # only stops a hung test; nothing here is timed


def click(qtbot, button) -> None:
    assert button.isEnabled(), f"{button.objectName()} is disabled: {button.toolTip()}"
    qtbot.mouseClick(button, QtCore.Qt.LeftButton)


@pytest.fixture
def case_dir(make_phantom_set) -> Path:
    set_dir = make_phantom_set(n=1, shape=(32, 32, 32), spacing=6.0, channels="t1,t1ce,t2,flair", tumour=False)
    return next(p for p in set_dir.iterdir() if p.is_dir())


def test_a_mask_file_or_a_sphere_drawn_by_a_click_is_added_to_the_case(panel, qtbot, case_dir, tmp_path):
    assert "needs the engine" in panel.tumourStatusLabel.text() and not panel.tumourAddButton.isEnabled()
    click(qtbot, panel.startEngineButton)
    assert panel.tumourModelComboBox.currentText() == "ldm3d-phantom"
    panel.set_case(case_dir, read_case(case_dir))
    assert panel.tumourVolumeComboBox.currentText() == f"{case_dir.name} t1"
    assert "Draw the tumour first" in panel.tumourStatusLabel.text() and not panel.tumourGenerateButton.isEnabled()

    # A mask file stands in for drawing; one holding BraTS codes is sent as it is.
    panel.guard(lambda: panel.use_mask_file(tmp_path / "none.nii.gz"))
    assert "does not exist" in panel.errorLabel.text()
    mask = tmp_path / "labels.nii.gz"
    image = nib.load(str(case_dir / f"{case_dir.name}_t1.nii.gz"))
    codes = np.zeros(image.shape, np.uint8)
    codes[14:18, 14:18, 14:18] = 2
    codes[15:17, 15:17, 15:17] = 4
    nib.save(nib.Nifti1Image(codes, image.affine), str(mask))
    panel.use_mask_file(mask)
    assert panel.tumourSegmentComboBox.currentText() == f"{MASK_FILE}: labels.nii.gz"
    assert panel.tumourGenerateButton.isEnabled()
    panel.tumourLabelsCheckBox.setChecked(True)
    assert panel._write_drawn() == (mask, False)
    panel.tumourLabelsCheckBox.setChecked(False)
    assert panel._write_drawn() == (mask, True)  # unticked: one region, grown into a tumour by the engine

    # The sphere: placed where a view was clicked, with the panel's radius.
    centre = (96.0, 100.0, 100.0)  # mm on the case grid, inside the brain
    panel.radiusSpinBox.setValue(15.0)
    with qtbot.waitSignal(panel.drawnChanged) as drawn:
        panel.place_sphere(centre)
    sphere, shown_centre = drawn.args
    assert shown_centre == centre and panel.tumourSegmentComboBox.currentText() == SPHERE
    spacing = np.array(read_case(case_dir).spacing)
    voxels = np.argwhere(sphere > 0) * spacing
    assert sphere.shape == (32, 32, 32) and np.sqrt(((voxels - centre) ** 2).sum(axis=1)).max() <= 15.0
    ball = 4 / 3 * np.pi * 15.0**3
    assert abs(sphere.sum() * spacing.prod() - ball) < 0.5 * ball
    assert panel.tumourAddButton.isEnabled() and panel.tumourGenerateButton.isEnabled()

    panel.tumourMarginSpinBox.setValue(6.0)
    panel.tumourStepsSpinBox.setValue(2)  # few diffusion steps: the flow is tested here, the model's quality elsewhere
    with qtbot.waitSignal(panel.caseReady, timeout=JOB_LIMIT_MS) as shown:
        click(qtbot, panel.tumourAddButton)
        assert not panel.tumourAddButton.isEnabled()  # a job runs
    assert "Add-tumour job succeeded" in panel.jobStatusLabel.text(), panel.errorLabel.text()
    result = Path(shown.args[0])
    job = panel.controller.tracker.job
    assert job["params"]["outline"] is True and job["params"]["margin_mm"] == 6.0 and job["params"]["steps"] == 2
    seg = np.asarray(nib.load(str(result / f"{result.name}_seg.nii.gz")).dataobj)
    assert {1, 2, 4} <= set(np.unique(seg).tolist()) <= {0, *BRATS_LABELS}
    assert sorted(p.name.split("_")[-1] for p in result.glob("*.nii.gz")) == [
        "flair.nii.gz", "seg.nii.gz", "t1.nii.gz", "t1ce.nii.gz", "t2.nii.gz"]
