"""The Qt-free reader session: one case at a time in the study's order, answers saved at once and resumed,
bad answers refused, scoring against the key kept apart; it imports neither torch nor Qt."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from MedSynthLib.reader_study import ReaderSession, ReaderStudyError, score

IDS = ["case-001", "case-002", "case-003", "case-004"]
TRUTH = {"case-001": "synthetic", "case-002": "real", "case-003": "real", "case-004": "synthetic"}


@pytest.fixture
def study(tmp_path):
    folder = tmp_path / "study"
    folder.mkdir()
    cases = [{"id": i, "files": {"t1": f"{i}/{i}_t1.nii.gz"}} for i in IDS]
    (folder / "study.json").write_text(json.dumps({"format": "medsynth-reader-study", "format_version": 1, "cases": cases}))
    key = tmp_path / "study-answer-key.json"
    key.write_text(json.dumps({"cases": {i: {"truth": t, "source_case": "x"} for i, t in TRUTH.items()}}))
    return folder, key


def test_cases_come_in_study_order_and_answers_are_saved_and_resumed(study):
    folder, _ = study
    session = ReaderSession(folder, "dr-b")
    assert session.current.id == "case-001" and session.current.files["t1"] == folder / "case-001" / "case-001_t1.nii.gz"
    assert session.record("synthetic", 5).id == "case-002"
    session.record("synthetic", 2)
    saved = json.loads((folder / "responses-dr-b.json").read_text())
    assert saved["reader"] == "dr-b" and saved["answers"]["case-002"]["answer"] == "synthetic"
    again = ReaderSession(folder, "dr-b")  # closing the panel loses nothing
    assert again.answered == 2 and again.current.id == "case-003" and not again.finished
    assert ReaderSession(folder, "dr-c").answered == 0  # each reader has their own answers


def test_score_against_the_key(study):
    folder, key = study
    session = ReaderSession(folder, "r1")
    for answer, confidence in (("synthetic", 5), ("synthetic", 2), ("real", 4), ("real", 4)):
        session.record(answer, confidence)
    assert session.finished and session.current is None
    result = score(session, key)
    assert result["accuracy"] == 0.5 and result["answered"] == 4 and result["total"] == 4
    assert result["by_truth"]["real"] == {"n": 2, "accuracy": 0.5} and result["by_truth"]["synthetic"] == {"n": 2, "accuracy": 0.5}
    assert result["by_confidence"]["5"] == {"n": 1, "accuracy": 1.0} and result["by_confidence"]["4"] == {"n": 2, "accuracy": 0.5}
    assert result["confusion"] == {"real->real": 1, "real->synthetic": 1, "synthetic->real": 1, "synthetic->synthetic": 1}
    with pytest.raises(ReaderStudyError, match="answered already"):
        session.record("real", 3)


def test_bad_answers_names_and_files_are_refused(study, tmp_path):
    folder, key = study
    session = ReaderSession(folder, "r2")
    with pytest.raises(ReaderStudyError, match="'real' or 'synthetic'"):
        session.record("fake", 3)
    with pytest.raises(ReaderStudyError, match="1 \\(guess\\) to 5"):
        session.record("real", 0)
    assert session.answered == 0 and not (folder / "responses-r2.json").exists()
    with pytest.raises(ReaderStudyError, match="letters, digits"):
        ReaderSession(folder, "../escape")
    with pytest.raises(ReaderStudyError, match="does not exist"):
        ReaderSession(tmp_path / "nowhere", "r2")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "study.json").write_text("{not json")
    with pytest.raises(ReaderStudyError, match="not readable JSON"):
        ReaderSession(tmp_path / "other", "r2")
    wrong = tmp_path / "wrong-key.json"
    wrong.write_text(json.dumps({"cases": {"case-001": {"truth": "real"}}}))
    with pytest.raises(ReaderStudyError, match="does not belong to this study"):
        score(session, wrong)


def test_the_session_imports_neither_torch_nor_qt():
    code = "import sys, MedSynthLib.reader_study; bad = [m for m in ('torch', 'PyQt5', 'qt', 'numpy') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
