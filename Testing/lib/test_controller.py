"""The panel's shared logic: input validation, enablement, and jobs against a real engine process."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest
from medsynth_engine.jobs.kinds import job_kinds_document

from MedSynthLib.client import EngineError
from MedSynthLib.controller import (
    InputError,
    PanelController,
    first_case_dir,
    latest_mosaic,
    loss_series,
    read_loss_log,
    validate_export,
    validate_finetune,
    validate_generate,
)
from MedSynthLib.jobschema import SchemaError, check_params

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out


def wait_until_done(controller: PanelController, limit: float = 120.0) -> dict:
    """Drive the controller the way the QTimer does (the limit only stops a hung test; nothing is timed)."""
    deadline = time.monotonic() + limit
    while controller.tracker.active:
        assert time.monotonic() < deadline, "the job did not end"
        controller.poll()
        time.sleep(0.2)
    return controller.tracker.job


@pytest.fixture(scope="module")
def engine_controller(tmp_path_factory):
    state = tmp_path_factory.mktemp("engine-state")
    controller = PanelController()
    controller.start_engine(sys.executable, str(state), device="cpu", env=dict(os.environ))  # this checkout's engine
    yield controller
    controller.stop_engine(force=True)


# -- validation: one test per message -------------------------------------------------------------------


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({"model": "", "count": 1, "seed": 0, "channels": "t1", "tumour": True}, "No model is selected"),
        ({"model": "phantom", "count": 1, "seed": 0, "channels": "t1,pd", "tumour": True}, "Unknown channel 'pd'"),
        ({"model": "phantom", "count": 1, "seed": 0, "channels": "", "tumour": True}, "No channel"),
    ],
)
def test_generate_inputs_are_checked(inputs, message):
    with pytest.raises(InputError, match=message):
        validate_generate(**inputs)


@pytest.mark.parametrize("count, seed, message", [(0, 0, "n 0 is out of range"), (1, -1, "seed -1 is out of range"),
                                                  (20_000, 0, None)])
def test_generate_limits_are_the_engines_schema(count, seed, message):
    """No copy of the engine's limits: 20,000 cases (over the panel's old cap of 10,000) pass, as in the engine."""
    params = validate_generate(model="phantom", count=count, seed=seed, channels="t1", tumour=True)
    kinds = job_kinds_document()["kinds"]
    if message is None:
        check_params("generate", params, kinds)
        return
    with pytest.raises(SchemaError, match=message):
        check_params("generate", params, kinds)


def test_generate_params_are_the_engine_job_params():
    params = validate_generate(model="phantom", count=3, seed=7, channels="seg,t1", tumour=False, shape=32)
    assert params == {"model": "phantom", "n": 3, "seed": 7, "channels": ["t1", "seg"], "layout": "brats",
                      "tumour": False, "shape": 32}


def test_finetune_rejects_missing_and_empty_data_folders(tmp_path):
    base = {"model": "phantom", "channels": "t1", "steps": 2}
    with pytest.raises(InputError, match="No data folder"):
        validate_finetune(data="", **base)
    with pytest.raises(InputError, match="does not exist"):
        validate_finetune(data=tmp_path / "nope", **base)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    (empty / "case-without-images").mkdir()
    with pytest.raises(InputError, match="holds no case folders"):
        validate_finetune(data=empty, **base)


def test_finetune_accepts_a_brats_folder_and_checks_the_model_folder(make_phantom_set, tmp_path):
    data = make_phantom_set(n=2, shape=(16, 16, 16), spacing=8.0)
    params = validate_finetune(data=data, model="phantom", channels="t1,t2", steps=5, out=tmp_path / "model")
    assert params["data"] == str(data) and params["steps"] == 5 and params["channels"] == ["t1", "t2"]
    with pytest.raises(InputError, match="not empty"):
        validate_finetune(data=data, model="phantom", channels="t1", steps=5, out=data)
    with pytest.raises(SchemaError, match="steps 0 is out of range"):
        check_params("finetune", validate_finetune(data=data, model="phantom", channels="t1", steps=0),
                     job_kinds_document()["kinds"])


def test_export_needs_something_to_export_and_a_writable_new_folder(tmp_path, read_only_folder):
    with pytest.raises(InputError, match="nothing to export"):
        validate_export(out=tmp_path / "x", layout="brats", channels="t1")
    with pytest.raises(InputError, match="Unknown layout"):
        validate_export(out=tmp_path / "x", layout="nifti", channels="t1", job="job-1")
    with pytest.raises(InputError, match="does not exist"):
        validate_export(out=tmp_path / "no" / "x", layout="brats", channels="t1", job="job-1")
    with read_only_folder(tmp_path / "locked") as locked:
        with pytest.raises(InputError, match="Cannot write into"):
            validate_export(out=locked / "x", layout="brats", channels="t1", job="job-1")
    assert validate_export(out=tmp_path / "x", layout="nnunet", channels="t1,seg", job="job-1") == {
        "out": str(tmp_path / "x"), "layout": "nnunet", "channels": ["t1", "seg"], "job": "job-1"}
    with pytest.raises(InputError, match="training folder to audit against"):
        validate_export(out=tmp_path / "x", layout="brats", channels="t1", job="job-1", audit_against=tmp_path / "nope")
    assert validate_export(out=tmp_path / "x", layout="brats", channels="t1", job="job-1", audit_against=tmp_path)[
        "audit_against"] == str(tmp_path)
    assert "audit_against" not in validate_export(out=tmp_path / "x", layout="brats", channels="t1", job="job-1", audit_against=" ")


def test_first_case_and_latest_mosaic(make_phantom_set, tmp_path):
    set_dir = make_phantom_set(n=2, shape=(16, 16, 16), spacing=8.0)
    case = first_case_dir(set_dir)
    assert case.parent == set_dir and (case / f"{case.name}_t1.nii.gz").is_file()
    with pytest.raises(InputError, match="no case folder"):
        first_case_dir(tmp_path)
    files = ["model/samples/mosaic_step9.png", "model/samples/mosaic_step120.png", "model/loss.jsonl"]
    assert latest_mosaic(files) == "model/samples/mosaic_step120.png"
    assert latest_mosaic(["model/loss.jsonl"]) is None


def test_loss_log_is_read_whole_and_tolerates_a_line_being_written(tmp_path):
    log = tmp_path / "loss.jsonl"
    log.write_text('{"step": 1, "stage": 8, "alpha": 1.0, "g": 2.0, "d": 1.0, "time": 5.0}\n'
                   '{"step": 2, "stage": 8, "alpha": 1.0, "g": 1.5, "d": 0.5, "time": 6.0}\n{"step": 3, "g"')
    assert read_loss_log(log) == [(1, {"g": 2.0, "d": 1.0}), (2, {"g": 1.5, "d": 0.5})]
    assert read_loss_log(tmp_path / "missing.jsonl") == []


def test_loss_series_keeps_each_step_once():
    controller = PanelController()
    controller.tracker.follow({"id": "j", "kind": "finetune", "state": "running", "metrics": {}})
    for step, g in ((1, 2.0), (1, 2.0), (3, 1.5)):
        controller.tracker.update({"id": "j", "kind": "finetune", "state": "running",
                                   "metrics": {"step": step, "losses": {"g": g, "d": 0.5}}})
    assert loss_series(controller.tracker.losses) == {"g": ([1, 3], [2.0, 1.5]), "d": ([1, 3], [0.5, 0.5])}


# -- enablement without an engine -------------------------------------------------------------------------


def test_without_an_engine_everything_says_start_the_engine_first():
    controller = PanelController()
    view = controller.view({"volume": "case t1"})
    assert view.engine_status == "Engine not running."
    for name in ("generate", "finetune", "export", "cancel", "resume", "stop_engine", "add_seg", "add_ct"):
        assert not view.enabled[name], name
        assert view.reasons[name]
    assert view.enabled["start_engine"]
    with pytest.raises(InputError, match="engine is not running"):
        controller.generate(model="phantom", count=1, seed=0, channels="t1", tumour=True)
    with pytest.raises(InputError, match="nothing to cancel"):
        controller.cancel()


def test_connecting_to_nothing_is_one_clear_sentence():
    controller = PanelController()
    with pytest.raises(EngineError, match="Cannot reach the MedSynth engine"):
        controller.connect("http://127.0.0.1:9")  # discard port: nothing listens
    with pytest.raises(InputError, match="not an engine address"):
        controller.connect("localhost:8765")
    with pytest.raises(InputError, match="does not exist"):
        controller.start_engine("/no/such/python", "/tmp")
    assert not controller.session.connected and controller.view().enabled["start_engine"]


# -- a real engine ----------------------------------------------------------------------------------------


def test_generate_through_the_engine_then_export(engine_controller, tmp_path):
    controller = engine_controller
    view = controller.view()
    assert view.engine_status.startswith("Engine ") and "cpu" in view.engine_status
    assert [m["id"] for m in controller.models][0] == "phantom"
    assert view.enabled["generate"] and not view.enabled["export"] and not view.enabled["cancel"]
    job = controller.generate(model="phantom", count=1, seed=3, channels="t1,flair,seg", tumour=True, shape=16, spacing=8.0)
    assert controller.view().enabled["cancel"] and not controller.view().enabled["generate"]
    with pytest.raises(InputError, match="still running"):
        controller.generate(model="phantom", count=1, seed=3, channels="t1", tumour=True)
    done = wait_until_done(controller)
    assert done["state"] == "succeeded", done
    assert controller.take_finished()["id"] == job["id"] and controller.take_finished() is None
    case = first_case_dir(done["output_dir"])
    assert sorted(p.name.split("_")[-1] for p in case.iterdir()) == ["flair.nii.gz", "seg.nii.gz", "t1.nii.gz"]
    view = controller.view()
    assert view.enabled["export"] and view.progress == 100 and "succeeded" in view.job_status

    out = Path.home() / f".medsynth-test-export-{os.getpid()}"  # inside the engine's allowed folders
    try:
        controller.export(out=out, layout="nnunet", channels="t1,seg")
        exported = wait_until_done(controller)
        assert exported["state"] == "succeeded", exported
        assert (out / "dataset.json").is_file() and len(list((out / "imagesTr").iterdir())) == 1
        # The export gate reaches the engine: a one-case set cannot serve as the training set to audit against.
        gated = Path.home() / f".medsynth-test-gated-{os.getpid()}"
        with pytest.raises(EngineError, match="needs at least 2 cases"):
            controller.export(out=gated, layout="brats", channels="t1,seg", audit_against=done["output_dir"])
        assert not gated.exists()
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_engine_refusals_reach_the_panel_as_sentences(engine_controller, tmp_path):
    with pytest.raises(EngineError, match="outside the folders") as refused:
        engine_controller.export(out="/proc/medsynth-export", layout="brats", channels="t1", source=tmp_path)
    assert refused.value.status == 403
    assert not engine_controller.tracker.active and engine_controller.view().enabled["generate"]


def test_connect_by_url_with_a_token_or_its_file_and_refuse_a_wrong_token(engine_controller):
    url, token_file = engine_controller.session.client.url, engine_controller.session.process.token_file
    other = PanelController()
    with pytest.raises(EngineError, match="token") as refused:
        other.connect(url, credential="not-the-token")
    assert refused.value.status == 401 and not other.session.connected
    assert other.connect(url, credential=str(token_file))["status"] == "ok"
    other.session.stop()  # forgets the connection; the engine belongs to engine_controller
    assert other.connect(url, credential=token_file.read_text().strip())["status"] == "ok"
    assert [m["id"] for m in other.models][0] == "phantom" and other.session.process is None


def test_channel_tools_say_which_model_is_missing(engine_controller):
    assert "needs a loaded volume" in engine_controller.view({"volume": None}).reasons["add_seg"]
    models = engine_controller.channel_models
    engine_controller.channel_models = []  # as an engine without add-channel models answers
    try:
        view = engine_controller.view({"volume": "ms-1 t1"})
        assert not view.enabled["add_seg"] and "needs a seg model" in view.reasons["add_seg"]
        assert not view.enabled["add_ct"] and "needs a ct model" in view.reasons["add_ct"]
        with pytest.raises(InputError, match="needs a ct model"):
            engine_controller.add_channel("ct", "/tmp")
    finally:
        engine_controller.channel_models = models


def test_engine_dying_mid_job_is_reported_and_the_panel_recovers(tmp_path):
    controller = PanelController()
    controller.start_engine(sys.executable, str(tmp_path / "state"), device="cpu", env=dict(os.environ))
    try:
        controller.generate(model="phantom", count=50, seed=0, channels="t1,t2,seg", tumour=True, shape=24)
        engine = psutil.Process(controller.session.process.pid)
        workers = engine.children(recursive=True)
        os.kill(engine.pid, signal.SIGKILL)
        controller.session.process.process.wait()
        for worker in workers:  # a crashed engine's orphans would keep the CPU busy after the test
            with contextlib.suppress(psutil.NoSuchProcess):
                worker.kill()
        controller.poll()
        view = controller.view()
        assert "The engine process stopped during the generate job" in view.job_status and view.error == view.job_status
        assert not controller.session.connected and view.enabled["start_engine"] and not view.enabled["cancel"]
        # (Starting again from the panel is covered by Testing/studio/test_panel.py.)
    finally:
        controller.stop_engine(force=True)


def test_stop_engine_waits_for_a_running_job(engine_controller):
    controller = engine_controller
    controller.generate(model="phantom", count=40, seed=1, channels="t1", tumour=False, shape=24)
    try:
        assert controller.stop_engine() is False and controller.session.connected
    finally:
        cancelled = controller.cancel()
        wait_until_done(controller)
    assert cancelled["state"] in ("cancelled", "running", "queued")
    assert controller.tracker.job["state"] == "cancelled"
    assert controller.view().enabled["resume"]  # a cancelled generate resumes from its journal (its kind is resumable)


def test_finetune_bases_prefer_trainable_models():
    controller = PanelController()
    controller.models = [{"id": "phantom", "kind": "procedural"}]
    assert controller.finetune_bases() == ["pgan3d"]
    controller.models.append({"id": "pgan3d-brats", "kind": "gan"})
    assert controller.finetune_bases() == ["pgan3d-brats"]
    controller.models[1:1] = [{"id": "ldm3d-phantom", "kind": "diffusion"}]  # listed before the GAN by the engine
    assert controller.finetune_bases() == ["pgan3d-brats", "ldm3d-phantom"]


def test_spin_box_limits_and_section_status_follow_the_engine():
    controller = PanelController()
    assert controller.spin_box_maxima() == {}  # no engine yet: the .ui's own limits stay
    controller.job_kinds = job_kinds_document()["kinds"]
    maxima = controller.spin_box_maxima()
    assert maxima["countSpinBox"] == job_kinds_document()["kinds"]["generate"]["params_schema"]["properties"]["n"]["maximum"]
    assert set(maxima) == {"countSpinBox", "stepsSpinBox"} and all(isinstance(v, int) for v in maxima.values())
    view = controller.view({"volume": "case t1"})
    reasons = view.section_status("add_seg", "add_ct").split("\n")
    assert reasons == list(dict.fromkeys(view.reasons[k] for k in ("add_seg", "add_ct")))  # each reason once
    assert set(controller.model_choices()) == {"modelComboBox", "baseModelComboBox", "tumourModelComboBox"}
