"""The panel's Cohort and Progression sections, made from the real .ui through the PythonQt shim: the strata table
edited by clicks and typing becomes a cohort the engine accepts; with a real engine, Generate makes that cohort and
the Progression section makes a growth series of its first case, whose time points the slider shows in the scene."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from MedSynthLib.cohorteditor import DEFAULT_ROWS, cohort_from_rows
from MedSynthLib.progressionpanel import progress_params
from MedSynthLib.requests import InputError

LIMIT_S = 300.0


@pytest.fixture
def panel(medsynth, monkeypatch, tmp_path):
    import slicer

    monkeypatch.setenv("MEDSYNTH_STATE_DIR", str(tmp_path / "engine-state"))
    parent = slicer.qSlicerScriptedLoadableModuleWidget()
    widget = medsynth.MedSynthWidget(parent)
    widget.setup()
    parent._entered = True
    widget.enter()
    yield widget
    widget.cleanup()
    widget.logic.controller.stop_engine(force=True)


def _type(table, row: int, column: int, text: str) -> None:
    import qt

    table.setItem(row, column, qt.QTableWidgetItem(text))


@pytest.mark.parametrize(("row", "words"), [
    ({"name": "", "count": "2"}, "has no name"),
    ({"name": "a", "count": "two"}, "count must be a whole number"),
    ({"name": "a", "count": "2", "volume_ml": "20-5"}, "low end first"),
    ({"name": "a", "count": "2", "volume_ml": "big"}, "range in ml such as 5-20"),
    ({"name": "a", "count": "2", "site": "middle"}, "site must be left, right"),
    ({"name": "a", "count": "2", "enhancing": "maybe"}, "enhancing must be yes, no or empty"),
    ({"name": "a", "count": "2", "healthy": "yes", "site": "left"}, "healthy but has tumour cells"),
])
def test_a_wrong_cell_is_one_sentence_naming_its_row(row, words):
    with pytest.raises(InputError, match=words) as info:
        cohort_from_rows([{"name": "ok", "count": "1"}, row])
    assert "row 2" in str(info.value) and "\n" not in str(info.value)


def test_the_table_becomes_a_cohort_the_engine_accepts(panel):
    from medsynth_engine.cohort.spec import parse_cohort

    ui, editor = panel.ui, panel.cohortEditor
    assert panel.sections["cohortGroup"].collapsed and panel.sections["progressionGroup"].collapsed
    assert ui.cohortTable.rowCount == len(DEFAULT_ROWS)
    ui.addStratumButton.click()
    _type(ui.cohortTable, 3, 0, "temporal-big")
    _type(ui.cohortTable, 3, 2, "40 - 90")
    _type(ui.cohortTable, 3, 3, "Temporal")
    _type(ui.cohortTable, 3, 4, "yes")
    cohort = editor.cohort()
    assert cohort["strata"][3] == {"name": "temporal-big", "count": 1, "tumour": {"volume_ml": [40.0, 90.0], "lobe": "temporal", "enhancing": True}}
    assert cohort["strata"][0] == {"name": "small-left", "count": 4, "tumour": {"volume_ml": [5.0, 20.0], "hemisphere": "left", "enhancing": False}}
    assert cohort["strata"][2] == {"name": "healthy", "count": 2, "tumour": "none"}
    spec = parse_cohort(cohort)  # the engine's own reading of it
    assert spec.total == 11 and spec.strata[3].tumour.lobe == "temporal"
    ui.cohortTable.setCurrentCell(0, 0)
    ui.removeStratumButton.click()
    assert [s["name"] for s in editor.cohort()["strata"]] == ["large-right", "healthy", "temporal-big"]
    _type(ui.cohortTable, 0, 0, "healthy")
    with pytest.raises(InputError, match="Two strata are named healthy"):
        editor.cohort()


def test_progress_params_check_the_fields(tmp_path):
    assert progress_params(str(tmp_path), "growth", "0, 3,6") == {"case": str(tmp_path), "model": "growth", "months": [0.0, 3.0, 6.0]}
    for args, words in [(("", "growth", "0"), "Choose the case folder"), ((str(tmp_path / "no"), "growth", "0"), "does not exist"),
                        ((str(tmp_path), "growth", "6,3"), "increase with no repeats"), ((str(tmp_path), "growth", "soon"), "comma-separated")]:
        with pytest.raises(InputError, match=words):
            progress_params(*args)


@pytest.mark.slow
def test_generate_a_cohort_then_step_through_its_growth_series(panel):
    import slicer

    ui, logic = panel.ui, panel.logic
    app = slicer.app._qapp

    def until(condition, describe=lambda: ui.errorLabel.text) -> None:
        deadline = time.monotonic() + LIMIT_S
        while not condition():
            assert time.monotonic() < deadline, describe() or ui.jobStatusLabel.text
            app.processEvents()
            time.sleep(0.01)

    assert not ui.progressButton.enabled and ui.progressButton.toolTip  # no engine: says why
    ui.enginePythonEdit.text = sys.executable
    ui.startEngineButton.click()
    until(lambda: ui.modelComboBox.count > 0)

    # -- Cohort: one tumour stratum and one healthy, at 8 mm
    ui.cohortTable.setRowCount(0)
    for row in ({"name": "tumour", "count": "1", "volume_ml": "20-80", "site": "right", "enhancing": "yes"},
                {"name": "none", "count": "1", "healthy": "yes"}):
        panel.cohortEditor.add_row(row)
    ui.cohortCheckBox.checked = True
    ui.modelComboBox.setCurrentText("phantom")
    ui.voxelSizeSpinBox.value, ui.channelsEdit.text = 8.0, "t1,flair,seg"
    ui.generateButton.click()
    until(lambda: logic.loadedCases)
    generated = Path(logic.controller.tracker.job["output_dir"])
    manifest = json.loads((generated / "manifest.json").read_text())
    assert sorted(c["stratum"] for c in manifest["cases"]) == ["none", "tumour"]
    tumour_case = next(c for c in manifest["cases"] if c["stratum"] == "tumour")
    assert 20 <= tumour_case["attributes"]["volume_ml"] <= 80 and tumour_case["attributes"]["hemisphere"] == "right"

    # -- Progression: a growth series of that case, shown time point by time point
    first = logic.loadedCases[0].case_id
    ui.progressCaseEdit.text = str(generated / tumour_case["id"])
    ui.progressModelComboBox.setCurrentText("growth")
    ui.progressMonthsEdit.text = "0,6"
    assert ui.progressButton.enabled
    ui.progressButton.click()
    until(lambda: ui.progressTimeSlider.enabled)
    assert ui.progressTimeSlider.maximum == 1 and ui.progressTimeLabel.text.startswith("Month 0 (1 of 2)")
    until(lambda: any(c.case_id.endswith("_m00") for c in logic.loadedCases))
    ui.progressTimeSlider.value = 1
    assert ui.progressTimeLabel.text.startswith("Month 6 (2 of 2): whole tumour")
    until(lambda: any(c.case_id.endswith("_m06") for c in logic.loadedCases))
    ids = [c.case_id for c in logic.loadedCases]
    assert ids[0] == first and len(ids) == 3
    points = panel.progression.timeline.points
    assert points[1].whole_ml > points[0].whole_ml == tumour_case["attributes"]["volume_ml"]
    grown = next(c for c in logic.loadedCases if c.case_id.endswith("_m06"))
    assert set(grown.volumes) == {"t1", "flair"} and slicer.mrmlScene.IsNodePresent(grown.segmentation)
    ui.progressTimeSlider.value = 0  # back: shown from the scene, not loaded again
    app.processEvents()
    assert len(logic.loadedCases) == 3 and ui.progressTimeLabel.text.startswith("Month 0")
