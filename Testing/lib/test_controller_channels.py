"""The panel's Channels and Tumour logic (shared by the Slicer module and the studio) against a real engine process."""

from __future__ import annotations

import os
import sys

import pytest
from medsynth_engine.jobs.kinds import job_kinds_document

from MedSynthLib.controller import (
    TUMOUR_MODEL,
    InputError,
    PanelController,
    input_case_name,
    result_to_load,
    validate_add_channel,
    validate_tumour,
)
from MedSynthLib.jobschema import SchemaError, check_params

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out


@pytest.fixture(scope="module")
def controller(tmp_path_factory):
    controller = PanelController()
    controller.start_engine(sys.executable, str(tmp_path_factory.mktemp("channels-engine")), device="cpu",
                            env=dict(os.environ))  # keeps PYTHONPATH: this checkout's engine
    yield controller
    controller.stop_engine(force=True)


@pytest.mark.parametrize(
    "name, case",
    [("ms-1a2b t1", "ms-1a2b"), ("MRHead", "MRHead"), ("my scan / v2 flair", "my-scan-v2"), ("  ", "volume"), ("t1", "t1")],
)
def test_input_case_names_drop_the_channel_word_and_are_file_safe(name, case):
    assert input_case_name(name) == case


def test_channel_and_tumour_inputs_are_checked(tmp_path):
    with pytest.raises(InputError, match="seg or ct"):
        validate_add_channel(channel="pd", case_dir=tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        validate_add_channel(channel="seg", case_dir=tmp_path / "nope")
    assert validate_add_channel(channel="ct", case_dir=tmp_path, model="mr2ct-phantom") == {
        "case": str(tmp_path), "channel": "ct", "replace": False, "model": "mr2ct-phantom"}
    mask = tmp_path / "mask.nii.gz"
    with pytest.raises(InputError, match="draw the tumour"):
        validate_tumour(mask=mask, outline=True, seed=0, model=TUMOUR_MODEL)
    mask.write_bytes(b"x")
    with pytest.raises(InputError, match="No tumour model"):
        validate_tumour(mask=mask, outline=True, seed=0, model="")
    kinds = job_kinds_document()["kinds"]  # limits are the engine's schema's (served at GET /job-kinds)
    with pytest.raises(SchemaError, match="seed -1 is out of range"):
        check_params("generate", validate_tumour(mask=mask, outline=True, seed=-1, model=TUMOUR_MODEL), kinds)
    with pytest.raises(SchemaError, match="margin_mm 60 is out of range"):
        check_params("add-tumour", validate_tumour(mask=mask, outline=True, seed=0, model=TUMOUR_MODEL, margin_mm=60,
                                                   case_dir=tmp_path), kinds)
    with pytest.raises(InputError, match="case folder"):
        validate_tumour(mask=mask, outline=True, seed=0, model=TUMOUR_MODEL, case_dir=tmp_path / "nope")
    generate = validate_tumour(mask=mask, outline=True, seed=4, model=TUMOUR_MODEL)
    assert generate == {"model": TUMOUR_MODEL, "seed": 4, "mask": str(mask), "outline": True, "n": 1, "layout": "brats",
                        "channels": ["t1", "t1ce", "t2", "flair", "seg"]}
    add = validate_tumour(mask=mask, outline=False, seed=0, model=TUMOUR_MODEL, margin_mm=6, case_dir=tmp_path, steps=5)
    assert add == {"model": TUMOUR_MODEL, "seed": 0, "mask": str(mask), "outline": False, "case": str(tmp_path),
                   "margin_mm": 6.0, "steps": 5}
    check_params("add-tumour", add, kinds)
    with pytest.raises(SchemaError, match="steps 5000 is out of range"):
        check_params("add-tumour", validate_tumour(mask=mask, outline=False, seed=0, model=TUMOUR_MODEL,
                                                   case_dir=tmp_path, steps=5000), kinds)


def test_results_to_load_per_job_kind(tmp_path):
    case = tmp_path / "set" / "ms-1"
    case.mkdir(parents=True)
    (case / "ms-1_t1.nii.gz").write_bytes(b"")
    assert result_to_load({"kind": "generate", "state": "succeeded", "output_dir": str(tmp_path / "set")}) == ("case", case)
    assert result_to_load({"kind": "add-tumour", "state": "succeeded", "result": {"case": str(case)}}) == ("case", case)
    written = [str(case / "ms-1_seg.nii.gz"), str(case / "ms-1_seg.seg.nrrd")]
    assert result_to_load({"kind": "add-channel", "state": "succeeded", "result": {"written": written}}) == (
        "files", [case / "ms-1_seg.nii.gz"])
    assert result_to_load({"kind": "add-channel", "state": "failed", "result": {}}) is None
    assert result_to_load({"kind": "finetune", "state": "succeeded", "output_dir": str(tmp_path)}) is None


def test_without_an_engine_channels_and_tumour_say_start_it():
    view = PanelController().view({"volume": "ms-1 t1", "segment": "S1"})
    for name in ("add_seg", "add_ct", "tumour_generate", "tumour_add"):
        assert not view.enabled[name] and "engine" in view.reasons[name]


def test_enablement_follows_the_engines_models_and_the_selection(controller):
    assert {"seg", "ct"} <= {m["channel"] for m in controller.channel_models}
    assert TUMOUR_MODEL in controller.tumour_models()
    assert "seg-phantom" not in controller.generators() and controller.generators()[0] == "phantom"
    view = controller.view({"volume": "ms-1 t1"})
    assert view.enabled["add_seg"] and view.enabled["add_ct"]
    assert "Draw the tumour first" in view.reasons["tumour_generate"]
    assert not controller.view({"volume": None}).enabled["add_ct"]
    view = controller.view({"volume": None, "segment": "S1"})
    assert view.enabled["tumour_generate"] and "Select the case" in view.reasons["tumour_add"]
    assert controller.view({"volume": None, "segment": "S1", "case": "ms-1 t1"}).enabled["tumour_add"]
    models = controller.channel_models
    controller.channel_models = [m for m in models if m["channel"] != "ct"]  # an engine with no CT model
    try:
        assert "needs a ct model" in controller.view({"volume": "ms-1 t1"}).reasons["add_ct"]
        with pytest.raises(InputError, match="needs a ct model"):
            controller.add_channel("ct", "/tmp")
    finally:
        controller.channel_models = models


def test_input_folders_are_new_and_under_the_work_folder(controller):
    first, second = controller.input_folder("ms-1 t1"), controller.input_folder("ms-1 t1")
    assert first.name == second.name == "ms-1" and first != second
    assert first.parent.parent == controller.work_dir and first.parent.is_dir() and not first.exists()
    # Inside the state folder of the engine it started: a folder that engine may always read.
    assert controller.work_dir == controller.session.process.token_file.parent.resolve() / "panel-inputs"
