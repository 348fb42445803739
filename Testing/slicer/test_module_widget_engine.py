"""The MedSynth panel as a user drives it: set up the engine, start it, generate, fine-tune, cancel.

``MedSynthWidget`` is made with its real .ui through the PythonQt shim (pythonqt_shim, mrml_widgets, the
parameterNodeWrapper's GUI binding), over real MRML, a real venv made by real pip (offline, from the wheel the CMake
install tree ships) and a real engine process. Every step is a click or a typed value; the Qt event loop runs the
panel's timers. The longest GUI-thread call of each phase (a click, or one turn of the event loop, which runs the
timer ticks and queued slots) is printed with ``-s`` as wall and this thread's CPU time (on a loaded machine the wall
time includes waiting for a core and for the GIL), and recorded in bench/results/panel.md. What is asserted: every
engine request and the engine start ran off the GUI thread, and each step shows its result in the panel and scene.
"""

from __future__ import annotations

import json
import shutil
import sys
import threading
import time

import pytest

from MedSynthLib import client as client_module
from MedSynthLib import launcher
from MedSynthLib.enginesetup.plan import MARKER, find_wheelhouse

pytestmark = pytest.mark.slow  # a venv, a real engine and training steps

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


class GuiClock:
    """Runs the GUI thread's work (clicks, event-loop turns) and keeps the longest of each phase."""

    def __init__(self, logic) -> None:
        import slicer

        self.app, self.logic = slicer.app._qapp, logic
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def run(self, phase: str, fn, *args):
        began, began_cpu = time.perf_counter(), time.thread_time()
        try:
            return fn(*args)
        finally:
            self.wall[phase] = max(self.wall.get(phase, 0.0), time.perf_counter() - began)
            self.cpu[phase] = max(self.cpu.get(phase, 0.0), time.thread_time() - began_cpu)

    def click(self, phase: str, button) -> None:
        assert button.enabled, f"{button.name} is disabled: {button.toolTip}"
        self.run(phase, button.click)

    def until(self, phase: str, condition, describe=lambda: "") -> None:
        deadline = time.monotonic() + LIMIT_S
        while not condition():
            assert time.monotonic() < deadline, f"{phase}: {describe() or self.logic.controller.error}"
            self.run(phase, self.app.processEvents)
            time.sleep(0.01)

    def report(self) -> str:
        return ", ".join(f"{k} {1000 * v:.1f} ({1000 * self.cpu[k]:.1f})" for k, v in self.wall.items())


@pytest.fixture
def panel(medsynth, monkeypatch, tmp_path):
    """The module's Widget in the panel Slicer gives it, set up and entered; its engine is stopped afterwards."""
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


def test_a_full_size_case_loads_without_holding_the_gui_thread(panel, tmp_path, monkeypatch):
    """A generated set's first case at full size (176x208x176, four MR channels and the labels), as the panel loads
    it when a generate job ends: read on the worker thread, one node per timer tick."""
    import nibabel as nib
    import numpy as np
    import slicer

    shape, rng = (176, 208, 176), np.random.default_rng(0)
    case = tmp_path / "set" / "case-000"
    case.mkdir(parents=True)
    affine = np.diag([-1.0, -1.0, 1.0, 1.0])
    affine[:3, 3] = (88.0, 104.0, -72.0)
    for channel in ("t1", "t1ce", "t2", "flair"):
        nib.save(nib.Nifti1Image(rng.integers(0, 1200, shape, dtype=np.int16), affine), case / f"case-000_{channel}.nii.gz")
    labels = np.zeros(shape, np.uint8)
    labels[60:110, 70:130, 60:100], labels[75:95, 90:110, 70:90], labels[80:90, 95:105, 75:85] = 2, 4, 1
    nib.save(nib.Nifti1Image(labels, affine), case / "case-000_seg.nii.gz")
    # Where the work runs, not how long it takes (a CPU-time bound flaked under load; the times are bench_panel's):
    # the files are read on the worker thread, and each GUI-thread call makes at most one node.
    from MedSynthLib.scene import CaseBuilder

    gui, reads, steps = threading.current_thread().name, [], []
    read_result, step = panel.logic.readResult, CaseBuilder.step

    def read_on_thread(job):
        reads.append(threading.current_thread().name)
        return read_result(job)

    def step_on_thread(builder):
        steps.append(threading.current_thread().name)
        return step(builder)

    monkeypatch.setattr(panel.logic, "readResult", read_on_thread)
    monkeypatch.setattr(CaseBuilder, "step", step_on_thread)
    clock, steps_per_call = GuiClock(panel.logic), []
    began = time.perf_counter()
    clock.run("load", panel.logic.loadResultInSteps, {"kind": "generate", "state": "succeeded", "output_dir": str(case.parent)})
    assert not steps  # starting the load builds no node

    def one_turn():
        before = len(steps)
        clock.app.processEvents()
        steps_per_call.append(len(steps) - before)

    while not panel.logic.loadedCases:
        assert time.perf_counter() - began < LIMIT_S, panel.ui.errorLabel.text
        clock.run("load", one_turn)
        time.sleep(0.01)
    loaded = panel.logic.loadedCases[0]
    assert list(loaded.volumes) == ["t1", "t1ce", "t2", "flair"] and slicer.mrmlScene.IsNodePresent(loaded.segmentation)
    assert slicer.util.arrayFromVolume(loaded.volumes["t2"]).shape == shape[::-1]
    assert reads and gui not in reads, reads  # the 5 full-size files were read on the worker thread
    assert steps.count(gui) == len(steps) == 5, steps  # the nodes are made on the GUI thread, one per channel...
    assert max(steps_per_call) == 1, steps_per_call  # ...one per event-loop turn, never the whole case at once
    print(f"full-size case loaded in {time.perf_counter() - began:.2f} s; longest GUI-thread call, ms wall (CPU): "
          + clock.report())


def test_set_up_start_generate_finetune_cancel_through_the_panel(panel, installed_extension, recorded_threads,
                                                                 make_phantom_set, tmp_path, monkeypatch):
    import qt
    import slicer

    ui, logic = panel.ui, panel.logic
    clock = GuiClock(logic)

    # -- Set up...: a new venv under the user's settings folder, from the shipped wheel, pip offline
    clock.click("set-up", ui.setupEngineButton)
    dialog, _timer, setup = panel._setupDialog
    dialog_ui = slicer.util.childWidgetVariables(dialog)
    clock.until("set-up", lambda: not setup.probing.busy)
    assert not dialog_ui.setupButton.enabled  # the source checkout has no wheel beside MedSynth.py
    # The install tree has; torch and the pinned requirements are gigabytes from the network, so the offline set-up
    # runs the venv, engine and check steps.
    setup.wheelhouse = find_wheelhouse(installed_extension)
    setup.steps, setup.pip_options = ["venv", "engine", "check"], ("--no-index", "--find-links", str(setup.wheelhouse.folder))
    dialog_ui.basePythonEdit.text = sys.executable
    env_dir = tmp_path / "settings-env"
    dialog_ui.envFolderEdit.text = str(env_dir)
    assert str(env_dir) in dialog_ui.logText.plainText  # the plan shown follows what is typed
    clock.click("set-up", dialog_ui.setupButton)
    clock.until("set-up", lambda: setup.run is None, lambda: dialog_ui.statusLabel.text)
    assert dialog_ui.statusLabel.text.startswith("The engine environment is ready"), dialog_ui.logText.plainText
    venv_python = str(env_dir / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python"))
    assert ui.enginePythonEdit.text == venv_python == slicer.util.settingsValue("MedSynth/EnginePython", "")
    assert f"medsynth 0.1.0 from {env_dir}" in dialog_ui.logText.plainText
    assert json.loads((env_dir / MARKER).read_text())["torch"] == "cpu"
    assert "include-system-site-packages = false" in (env_dir / "pyvenv.cfg").read_text()

    # -- ... or an existing environment: this one has torch and the requirements (the offline venv has not)
    monkeypatch.setattr(qt.QFileDialog, "getOpenFileName", staticmethod(lambda *args: sys.executable))
    clock.click("set-up", dialog_ui.useExistingButton)
    assert ui.enginePythonEdit.text == sys.executable
    clock.click("set-up", dialog_ui.closeButton)

    # -- Start, with a data folder outside the home allowed
    hospital = tmp_path / "hospital"
    hospital.mkdir()
    ui.allowedFoldersEdit.text = str(hospital)
    clock.click("start", ui.startEngineButton)
    clock.until("start", lambda: ui.modelComboBox.count > 0)
    assert slicer.util.settingsValue("MedSynth/AllowedFolders", "") == str(hospital)  # remembered in the settings
    command = logic.controller.session.process.process.args
    assert command[command.index(str(hospital.resolve())) - 1] == "--allow-dir"  # and given to the engine
    assert "phantom" in [ui.modelComboBox.itemText(i) for i in range(ui.modelComboBox.count)]

    # -- Generate: the case and its overlay in the scene
    ui.modelComboBox.setCurrentText("phantom")
    ui.voxelSizeSpinBox.value, ui.channelsEdit.text = 8.0, "t1,flair,seg"
    assert panel._parameterNode.voxelSize == 8.0 and panel._parameterNode.channels == "t1,flair,seg"
    clock.click("generate", ui.generateButton)
    clock.until("generate", lambda: logic.loadedCases, lambda: ui.jobStatusLabel.text)
    case = logic.loadedCases[0]
    assert set(case.volumes) == {"t1", "flair"} and all(slicer.mrmlScene.IsNodePresent(n) for n in case.nodes)
    segmentation = case.segmentation
    assert segmentation.GetSegmentation().GetNumberOfSegments() == 3
    assert segmentation.GetDisplayNode().GetVisibility2DFill()
    listed = [panel.volumeSelector.nodeFromIndex(i) for i in range(panel.volumeSelector.nodeCount())]
    assert sorted(n.GetName() for n in listed) == sorted(v.GetName() for v in case.volumes.values())

    # -- Fine-tune 2 steps: the loss chart shows both rows
    data = hospital / "data"
    shutil.copytree(make_phantom_set(n=4, shape=(16, 16, 16), spacing=8.0), data)
    logic.controller.finetune_options = {"resolution": 8, "width": 8, "batch_size": 2, "checkpoint_every": 1, "log_every": 1}
    ui.dataFolderEdit.text, ui.finetuneChannelsEdit.text, ui.stepsSpinBox.value = str(data), "t1,t2", 2
    ui.baseModelComboBox.setCurrentText("pgan3d")
    clock.click("fine-tune", ui.finetuneButton)
    job = lambda: logic.controller.tracker.job or {}  # noqa: E731
    clock.until("fine-tune", lambda: job().get("state") == "succeeded", lambda: f"{job()} {ui.errorLabel.text}")
    clock.until("fine-tune", lambda: ui.finetuneButton.enabled and logic.lossPlot is not None and logic.lossPlot.rows == 2)
    view = panel.finetuneView.plot_widget.mrmlPlotViewNode()
    chart = view.GetScene().GetNodeByID(view.GetPlotChartNodeID())
    assert chart.GetNumberOfPlotSeriesNodes() >= 1 and logic.lossPlot.table.GetTable().GetNumberOfRows() == 2

    # -- Cancel a long fine-tune from the job bar at the top
    ui.stepsSpinBox.value = 100000
    clock.click("fine-tune", ui.finetuneButton)
    clock.until("fine-tune", lambda: job().get("state") == "running" and ui.cancelButton.enabled)
    clock.click("cancel", ui.cancelButton)
    clock.until("cancel", lambda: job().get("state") == "cancelled", lambda: f"{job()} {ui.errorLabel.text}")
    clock.until("cancel", lambda: not ui.cancelButton.enabled)
    assert not logic.controller.tracker.active and not ui.errorLabel.text

    on_gui = [what for what, thread in recorded_threads if thread == threading.current_thread().name]
    assert ("start" in [what for what, _ in recorded_threads]), recorded_threads
    assert not on_gui, on_gui
    # The GUI thread's times are printed, and recorded by bench/bench_panel.py, not asserted: a time bound flakes
    # on a shared machine. What would hold the GUI (engine HTTP or start on its thread) is asserted above.
    print("longest GUI-thread call, ms wall (CPU of this thread): " + clock.report())
