"""The studio's Reader Study section (PyQt5, offscreen): start, answer each case, resume, score; errors in the panel."""

from __future__ import annotations

import json

import pytest

from MedSynthLib.studio.reader_study_widget import ReaderStudyWidget

IDS = ["case-001", "case-002", "case-003"]
TRUTH = {"case-001": "real", "case-002": "synthetic", "case-003": "real"}


@pytest.fixture
def study(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    cases = [{"id": i, "files": {"t1": f"{i}/{i}_t1.nii.gz", "flair": f"{i}/{i}_flair.nii.gz"}} for i in IDS]
    (folder / "study.json").write_text(json.dumps({"format": "medsynth-reader-study", "format_version": 1, "cases": cases}))
    key = tmp_path / "key.json"
    key.write_text(json.dumps({"cases": {i: {"truth": t} for i, t in TRUTH.items()}}))
    return folder, key


def _start(qtbot, folder, reader="dr-a") -> tuple[ReaderStudyWidget, list[str]]:
    widget = ReaderStudyWidget()
    qtbot.addWidget(widget)
    shown: list[str] = []
    widget.caseReady.connect(shown.append)
    widget.studyEdit.setText(str(folder))
    widget.readerEdit.setText(reader)
    widget.startButton.click()
    return widget, shown


def test_a_reader_goes_through_the_study_and_scores(qtbot, study):
    folder, key = study
    widget, shown = _start(qtbot, folder)
    assert shown == [str(folder / "case-001")] and "Case 1 of 3" in widget.caseLabel.text()
    assert not widget.submitButton.isEnabled()  # nothing chosen yet
    for answer in ("real", "real", "real"):
        (widget.realButton if answer == "real" else widget.syntheticButton).click()
        widget.confidenceSpinBox.setValue(4)
        assert widget.submitButton.isEnabled()
        widget.submitButton.click()
        assert widget.answerGroup.checkedButton() is None  # cleared for the next case
    assert shown[-1] == str(folder / "case-003") and len(shown) == 3
    assert "All 3 case(s) answered" in widget.caseLabel.text() and not widget.realButton.isEnabled()
    widget.keyEdit.setText(str(key))
    widget.scoreButton.click()
    assert widget.resultLabel.text().startswith("Accuracy 67% on 3 of 3") and "synthetic 0%" in widget.resultLabel.text()
    assert widget.errorLabel.text() == ""


def test_reopening_continues_and_errors_are_shown_in_the_section(qtbot, study, tmp_path):
    folder, _ = study
    widget, _ = _start(qtbot, folder, "dr-b")
    widget.syntheticButton.click()
    widget.submitButton.click()
    again, shown = _start(qtbot, folder, "dr-b")
    assert "Case 2 of 3" in again.caseLabel.text() and shown == [str(folder / "case-002")]
    again.keyEdit.setText(str(tmp_path / "missing.json"))
    again.scoreButton.click()
    assert "does not exist" in again.errorLabel.text() and again.resultLabel.text() == ""
    bad, shown = _start(qtbot, tmp_path / "nowhere")
    assert "does not exist" in bad.errorLabel.text() and shown == [] and bad.caseLabel.text() == "No study open."
