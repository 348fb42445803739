"""The panel never waits on the engine on the GUI thread: start, generate, poll, fine-tune and cancel, driven the
way MedSynthWidget drives the Logic (xxxJob on the GUI thread, the engine call through inBackground, tick() from
the timer), with a real engine process and real MRML.

Every engine request and the engine start are recorded with the thread they ran on: none may run on this (the
GUI) thread. The longest GUI-thread call of each phase is printed (``-s``: wall time and this thread's CPU time;
on a loaded machine the wall time includes waiting for a core and for the GIL), not asserted: times belong in benches.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time

import pytest
import slicer

from MedSynthLib import client as client_module
from MedSynthLib import launcher

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

LIMIT_S = 240.0  # stops a hung test only


@pytest.fixture
def recorded_threads(monkeypatch):
    """(what, thread name) for every engine HTTP request and engine start."""
    calls: list[tuple[str, str]] = []
    request, start = client_module.EngineClient._json, launcher.EngineProcess.start.__func__

    def json_on_thread(self, method, path, body=None):
        calls.append((f"{method} {path}", threading.current_thread().name))
        return request(self, method, path, body)

    def start_on_thread(cls, *args, **kwargs):
        calls.append(("start", threading.current_thread().name))
        return start(cls, *args, **kwargs)

    monkeypatch.setattr(client_module.EngineClient, "_json", json_on_thread)
    monkeypatch.setattr(launcher.EngineProcess, "start", classmethod(start_on_thread))
    return calls


@pytest.mark.slow
def test_start_generate_finetune_cancel_never_wait_on_the_gui_thread(medsynth, recorded_threads, make_phantom_set, tmp_path):
    logic = medsynth.MedSynthLogic()
    longest: dict[str, float] = {}

    cpu: dict[str, float] = {}

    def gui(phase, fn, *args):
        began, began_cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*args)
        finally:
            longest[phase] = max(longest.get(phase, 0.0), time.perf_counter() - began)
            cpu[phase] = max(cpu.get(phase, 0.0), time.thread_time() - began_cpu)

    def until(phase, condition):
        deadline = time.monotonic() + LIMIT_S
        while not condition():
            assert time.monotonic() < deadline, f"{phase}: {logic.controller.error or logic.controller.tracker.job}"
            finished = gui(phase, logic.tick)
            if finished:
                return finished
            job = logic.controller.tracker.job
            if job and job.get("kind") == "finetune":
                gui("plot", logic.updateLossPlot, logic.controller.tracker.losses)
            time.sleep(0.02)
        return None

    hospital = tmp_path / "hospital"  # outside the home and the state folder: allowed by the panel's setting
    hospital.mkdir()
    logic.setAllowedFolders([str(hospital)])
    started = []
    state = tmp_path / "engine"
    logic.inBackground(gui("start", logic.startEngineJob, sys.executable, str(state)), started.append,
                       lambda exc: started.append(exc))
    until("start", lambda: started)
    assert isinstance(started[0], dict) and started[0]["device"] == "cpu", started

    try:
        parameters = logic.getParameterNode()
        parameters.voxelSize, parameters.channels = 8.0, "t1,flair,seg"
        logic.inBackground(gui("generate", logic.generateJob, parameters, "phantom"))
        finished = until("poll", lambda: False)
        assert finished["state"] == "succeeded", finished
        loaded = gui("load case", logic.loadResult, finished)
        assert slicer.mrmlScene.IsNodePresent(loaded.volumes["flair"]) and loaded.segmentation.GetSegmentation().GetNumberOfSegments()

        data = hospital / "data"
        shutil.copytree(make_phantom_set(n=4, shape=(16, 16, 16), spacing=8.0), data)
        logic.controller.finetune_options = {"resolution": 8, "width": 8, "batch_size": 2, "checkpoint_every": 1, "log_every": 1}
        parameters.dataFolder, parameters.steps, parameters.finetuneChannels = str(data), 2, "t1,t2"
        logic.inBackground(gui("fine-tune", logic.finetuneJob, parameters, "pgan3d"))
        finished = until("poll", lambda: False)
        assert finished["state"] == "succeeded", finished
        gui("plot", logic.updateLossPlot, logic.controller.tracker.losses)
        assert logic.lossPlot.rows == 2 and logic.lossPlot.table.GetTable().GetNumberOfRows() == 2

        parameters.steps = 100000
        submitted = []
        logic.inBackground(gui("fine-tune", logic.finetuneJob, parameters, "pgan3d"), submitted.append)
        until("poll", lambda: submitted)
        cancelled = []
        logic.inBackground(logic.controller.cancel, cancelled.append)
        until("poll", lambda: cancelled)
        assert cancelled[0]["state"] == "cancelled" and not logic.controller.tracker.active, cancelled

        on_gui = [what for what, thread in recorded_threads if thread == threading.current_thread().name]
        assert recorded_threads and not on_gui, on_gui
    finally:
        logic.controller.stop_engine(force=True)
    print("longest GUI-thread call, ms wall (CPU of this thread): "
          + ", ".join(f"{k} {1000 * v:.1f} ({1000 * cpu[k]:.1f})" for k, v in sorted(longest.items())))
