"""The MedSynthReaderStudy module's logic on real MRML: one blinded case in the scene at a time, answers saved,
the score against the organiser's key."""

from __future__ import annotations

import json

import pytest
import slicer


@pytest.fixture
def study(make_phantom_set, tmp_path):
    from medsynth_engine.evaluate.reader_study import ReaderStudyRequest, make_reader_study

    real = make_phantom_set(n=2, seed=0, shape=(16, 16, 16), spacing=8.0)
    synthetic = make_phantom_set(n=2, seed=1, shape=(16, 16, 16), spacing=8.0)
    return make_reader_study(ReaderStudyRequest(real=real, synthetic=synthetic, n=4, out=tmp_path / "study", seed=1))


def _study_volumes() -> list[str]:
    return sorted(n.GetName() for n in slicer.util.getNodesByClass("vtkMRMLScalarVolumeNode") if n.GetName().startswith("case-"))


def test_reader_study_shows_one_case_at_a_time_and_scores(reader_study_module, study):
    folder, key_path = study
    logic = reader_study_module.MedSynthReaderStudyLogic()
    with pytest.raises(reader_study_module.ReaderStudyError, match="Open a reader study"):
        logic.showStudyCase()
    session = logic.openReaderStudy(folder, "dr-s")
    loaded = logic.showStudyCase()
    assert loaded.case_id == "case-001" and _study_volumes() == [f"case-001 {c}" for c in ("flair", "t1", "t1ce", "t2")]
    key = json.loads(key_path.read_text())["cases"]
    while session.current is not None:
        shown = session.current.id
        nxt = logic.recordStudyAnswer(key[shown]["truth"], 5)
        remaining = _study_volumes()
        assert not any(name.startswith(f"{shown} ") for name in remaining)  # the answered case left the scene
        assert (nxt is None and remaining == []) or remaining[0].startswith(nxt.case_id)
    assert logic.scoreReaderStudy(key_path)["accuracy"] == 1.0
    assert json.loads((folder / "responses-dr-s.json").read_text())["reader"] == "dr-s"
