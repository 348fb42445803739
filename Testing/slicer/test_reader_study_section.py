"""The MedSynthReaderStudy module on real MRML, clicked through its panel (the PythonQt shim): one blinded case in
the scene at a time, answers saved, the score against the organiser's key."""

from __future__ import annotations

import json
import time

import pytest
import slicer


@pytest.fixture
def study(make_phantom_set, tmp_path):
    from medsynth_engine.evaluate.reader_study import ReaderStudyRequest, make_reader_study

    real = make_phantom_set(n=2, seed=0, shape=(16, 16, 16), spacing=8.0)
    synthetic = make_phantom_set(n=2, seed=1, shape=(16, 16, 16), spacing=8.0)
    return make_reader_study(ReaderStudyRequest(real=real, synthetic=synthetic, n=4, out=tmp_path / "study", seed=1))


def _settle(panel) -> None:
    """Run the event loop until the panel's next case is in the scene (read on a worker, built per timer tick)."""
    deadline = time.monotonic() + 60
    while panel.logic.loading:
        assert time.monotonic() < deadline, panel.ui.errorLabel.text
        slicer.app._qapp.processEvents()
        time.sleep(0.01)


def _study_volumes() -> list[str]:
    return sorted(n.GetName() for n in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode") if n.GetName().startswith("case-"))


@pytest.fixture
def panel(reader_study_module):
    parent = slicer.qSlicerScriptedLoadableModuleWidget()
    widget = reader_study_module.MedSynthReaderStudyWidget(parent)
    widget.setup()
    return widget


def test_reader_study_shows_one_case_at_a_time_and_scores(panel, study):
    folder, key_path = study
    ui = panel.ui
    assert ui.caseLabel.text == "No study open." and not ui.submitButton.enabled and not ui.scoreButton.enabled
    ui.startButton.click()  # nothing typed: the sentence says what is missing, the panel stays usable
    assert ui.errorLabel.text and panel.logic.readerSession is None
    ui.studyEdit.text, ui.readerEdit.text = str(folder), "dr-s"
    ui.startButton.click()
    assert not ui.submitButton.enabled  # nothing to answer until the case is in the scene
    _settle(panel)
    assert not ui.errorLabel.text, ui.errorLabel.text
    assert ui.caseLabel.text == "Case 1 of 4: case-001"
    assert _study_volumes() == [f"case-001 {c}" for c in ("flair", "t1", "t1ce", "t2")]
    ui.submitButton.click()  # no answer chosen
    assert ui.errorLabel.text == "Choose Real or Synthetic first."
    key = json.loads(key_path.read_text())["cases"]
    session = panel.logic.readerSession
    while session.current is not None:
        shown = session.current.id
        (ui.realButton if key[shown]["truth"] == "real" else ui.syntheticButton).click()
        ui.confidenceSpinBox.value = 5
        ui.submitButton.click()
        _settle(panel)
        remaining = _study_volumes()
        assert not any(name.startswith(f"{shown} ") for name in remaining)  # the answered case left the scene
        assert not (ui.realButton.checked or ui.syntheticButton.checked)  # every case needs its own answer
    assert _study_volumes() == [] and ui.caseLabel.text.startswith("All 4 case(s) answered")
    ui.keyEdit.text = str(key_path)
    ui.scoreButton.click()
    assert ui.resultLabel.text.startswith("Accuracy 100% on 4 of 4 case(s)"), ui.resultLabel.text
    assert json.loads((folder / "responses-dr-s.json").read_text())["reader"] == "dr-s"
