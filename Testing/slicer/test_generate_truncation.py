"""The Generate section's truncation field, made from the real .ui through the PythonQt shim: shown for a model
whose engine row says it takes truncation (stylegan2d), hidden for the others, bound to the parameter node, and
sent in the generate request only for such a model.

The model rows are the engine's own (``ModelRegistry.describe`` with a stylegan2d model folder registered); the
submission is caught at the client boundary and checked against the engine's own params schema, because no test
engine can list a stylegan2d model id (none ships yet).
"""

from __future__ import annotations

import pytest
from tiny_stylegan2d import untrained_stylegan2d

from MedSynthLib.requests import InputError, validate_generate

MODEL = "stylegan2d-tiny"


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


@pytest.fixture(scope="module")
def rows(tmp_path_factory) -> list[dict]:
    from medsynth_engine.registry import default_registry

    registry = default_registry()
    folder = untrained_stylegan2d(tmp_path_factory.mktemp("sg2d") / "tiny")
    family = registry.family("stylegan2d")
    registry.register(MODEL, lambda: family.load_folder(folder), family=family, folder=folder)
    return registry.describe()


def test_truncation_is_offered_for_stylegan2d_only_and_sent_only_for_it(panel, rows, monkeypatch):
    from medsynth_engine.jobs.kinds import job_kinds

    ui, controller = panel.ui, panel.logic.controller
    assert ui.truncationSpinBox.isHidden() and ui.truncationLabel.isHidden()  # no engine, no model
    assert next(r for r in rows if r["id"] == MODEL)["generate_options"] == ["truncation", "like"]
    assert next(r for r in rows if r["id"] == "phantom")["generate_options"] == []
    controller.models = rows
    panel._fillModels()
    ui.modelComboBox.setCurrentText(MODEL)
    assert not ui.truncationSpinBox.isHidden() and not ui.truncationLabel.isHidden()
    ui.truncationSpinBox.value = 0.6
    assert panel._parameterNode.truncation == pytest.approx(0.6)

    sent = []

    def submit(kind: str, params: dict) -> dict:
        job_kinds()[kind].params.model_validate(params)  # what the engine would refuse with a 422 fails here too
        sent.append(params)
        return {"id": "job", "kind": kind, "state": "queued"}

    monkeypatch.setattr(controller, "_submit", submit)
    panel.logic.generateJob(panel._parameterNode, ui.modelComboBox.currentText)()
    assert sent[-1]["model"] == MODEL and sent[-1]["truncation"] == pytest.approx(0.6)
    ui.modelComboBox.setCurrentText("phantom")
    assert ui.truncationSpinBox.isHidden()
    panel.logic.generateJob(panel._parameterNode, ui.modelComboBox.currentText)()
    assert sent[-1]["model"] == "phantom" and "truncation" not in sent[-1]  # the hidden value is not sent


def test_a_truncation_out_of_range_is_one_sentence():
    with pytest.raises(InputError, match="between 0 .* and 1"):
        validate_generate(model=MODEL, count=1, seed=0, channels="t1,seg", tumour=True, truncation=1.5)
    assert validate_generate(model=MODEL, count=1, seed=0, channels="t1,seg", tumour=True, truncation=0.0)["truncation"] == 0.0
