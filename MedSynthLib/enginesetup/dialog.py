"""The "Set up engine" dialog's behaviour over its widgets (``MedSynth/Resources/UI/EngineSetup.ui``).

It imports no Qt: the caller loads the .ui (Slicer's ``slicer.util.loadUI`` or PyQt5's ``uic``) and hands over the
child widgets and a timer, so the same code runs in Slicer (PythonQt) and under PyQt5 in tests. Only calls both
bindings share are used: setters, ``signal.connect`` and ``read_property`` for getters (PythonQt exposes Qt properties
as attributes, PyQt5 as methods). The work itself is :class:`~.runner.SetupRun` on its own thread; the timer only
collects its output, so the GUI never waits on pip.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ..background import BackgroundCalls
from ..i18n import _
from ..sections import read_property
from .plan import SetupError, default_env_dir, find_base_python, find_wheelhouse, make_plan
from .runner import SetupRun, check_disk_space
from .torchbuild import BUILDS, build_named, detect_driver_version, recommended_build

__all__ = ["EngineSetupDialog", "open_in_slicer"]


class EngineSetupDialog:
    """Wires the set-up widgets to a plan and a run; ``on_ready(python)`` gets the new environment's interpreter.

    ``steps`` and ``pip_options`` select a part of the plan and offline pip options (tests); ``driver`` replaces the
    nvidia-smi query and ``system`` the platform (tests).
    """

    def __init__(self, ui: Any, timer: Any, *, module_dir: Path, settings_file: str, on_ready: Callable[[str], None],
                 candidates: Sequence[str] = (), env: dict[str, str] | None = None,
                 choose_python: Callable[[], str] | None = None, steps: Sequence[str] | None = None,
                 pip_options: Sequence[str] = (), driver: Any = "detect", system: str | None = None) -> None:
        self.ui, self.timer, self.on_ready, self.env = ui, timer, on_ready, env
        self.module_dir, self.steps, self.pip_options = Path(module_dir), steps, tuple(pip_options)
        self.choose_python = choose_python
        self.system = system or platform.system()
        self.run: SetupRun | None = None
        self.wheelhouse = None
        self.builds = [build_named(name, self.system) for name in (BUILDS if self.system != "Darwin" else ("cpu",))]
        for build in self.builds:
            ui.torchBuildComboBox.addItem(build.label)
        ui.envFolderEdit.setText(str(default_env_dir(settings_file)))
        ui.driverLabel.setText(_("Looking for an NVIDIA driver and a Python 3.10 to 3.13..."))
        # nvidia-smi and the interpreters' version checks can take seconds: the probe runs on a worker thread too
        self.probing = BackgroundCalls("MedSynth set-up probe")
        self.probing.call(lambda: self._probe(driver, candidates), self._probed)
        try:
            self.wheelhouse = find_wheelhouse(self.module_dir)
        except SetupError as exc:
            ui.statusLabel.setText(str(exc))
        timer.setInterval(100)
        timer.timeout.connect(self.tick)
        timer.start()
        ui.torchBuildComboBox.currentIndexChanged.connect(lambda *args: self.show_plan())
        ui.basePythonEdit.textChanged.connect(lambda *args: self.show_plan())  # the plan shown is the one Set up runs
        ui.envFolderEdit.textChanged.connect(lambda *args: self.show_plan())
        ui.setupButton.clicked.connect(lambda *args: self.start())
        ui.cancelButton.clicked.connect(lambda *args: self.cancel())
        ui.useExistingButton.clicked.connect(lambda *args: self.use_existing())
        self.show_plan()

    def _probe(self, driver: Any, candidates: Sequence[str]) -> tuple[Any, str, str]:
        detected = detect_driver_version() if driver == "detect" else driver
        try:
            return detected, find_base_python(candidates, env=self._clean_env()), ""
        except SetupError as exc:
            return detected, "", str(exc)

    def _probed(self, found: tuple[Any, str, str]) -> None:
        detected, base, error = found
        recommended, why = recommended_build(detected, self.system)
        self.ui.torchBuildComboBox.setCurrentIndex([b.name for b in self.builds].index(recommended.name))
        self.ui.driverLabel.setText(_("{why} Choose another build to override.").format(why=why))
        if base and not str(read_property(self.ui.basePythonEdit, "text")).strip():
            self.ui.basePythonEdit.setText(base)
        if error:
            self.ui.statusLabel.setText(error)
        self.show_plan()

    def _clean_env(self) -> dict[str, str]:
        base = dict(os.environ if self.env is None else self.env)
        return {k: v for k, v in base.items() if k not in ("PYTHONHOME", "PYTHONPATH")}

    def plan(self):
        build = self.builds[read_property(self.ui.torchBuildComboBox, "currentIndex")]
        folder = str(read_property(self.ui.envFolderEdit, "text")).strip()
        base = str(read_property(self.ui.basePythonEdit, "text")).strip()
        if not base:
            raise SetupError(_("Choose the base Python (3.10 to 3.13) the environment is made from."))
        if self.wheelhouse is None:
            self.wheelhouse = find_wheelhouse(self.module_dir)
        return make_plan(Path(folder).expanduser(), base, self.wheelhouse, build, self.pip_options)

    def show_plan(self) -> None:
        """The commands set-up will run, before it runs (the user sees every download)."""
        if self.probing.busy:
            return self.update_buttons()
        try:
            self.ui.logText.setPlainText(self.plan().describe())
        except SetupError as exc:
            self.ui.logText.setPlainText("")
            self.ui.statusLabel.setText(str(exc))
        self.update_buttons()

    def start(self) -> None:
        try:
            plan = self.plan()
            check_disk_space(plan)
            self.run = SetupRun(plan, self.steps, env=self._clean_env()).start()
        except SetupError as exc:
            self.ui.statusLabel.setText(str(exc))
            return
        self.ui.logText.setPlainText("")
        self.ui.progressBar.setMaximum(len(self.run.steps))
        self.ui.progressBar.setValue(0)
        self.ui.statusLabel.setText(_("Setting up the engine environment; this can take several minutes."))
        self.timer.start()
        self.update_buttons()

    def tick(self) -> None:
        """Collect the probe's result and the run's new output (timer, GUI thread; never waits)."""
        self.probing.drain()
        if self.run is None:
            if not self.probing.busy:
                self.timer.stop()
            return
        progress = self.run.poll()
        if progress.lines:  # one append per tick: pip can print hundreds of lines between two ticks
            self.ui.logText.appendPlainText("\n".join(progress.lines))
        finished = progress.state != "running"
        self.ui.progressBar.setValue(progress.total if progress.state == "succeeded" else progress.step - 1)
        if finished:
            self.timer.stop()
            if progress.state == "succeeded":
                python = str(self.run.plan.python)
                self.ui.statusLabel.setText(
                    _("The engine environment is ready: {python}. Start uses it from now on.").format(python=python))
                self.on_ready(python)
            else:
                self.ui.statusLabel.setText(progress.error)
            self.run = None
        else:
            self.ui.statusLabel.setText(_("Step {step} of {total}: {title}...").format(
                step=progress.step, total=progress.total, title=progress.title))
        self.update_buttons()

    def cancel(self) -> None:
        if self.run is not None:
            self.ui.statusLabel.setText(_("Cancelling..."))
            self.run.cancel()

    def use_existing(self) -> None:
        python = self.choose_python() if self.choose_python else ""
        if python:
            self.ui.statusLabel.setText(_("Start will use {python}.").format(python=python))
            self.on_ready(python)

    def update_buttons(self) -> None:
        running = self.run is not None
        self.ui.setupButton.setEnabled(not running and not self.probing.busy and self.wheelhouse is not None)
        self.ui.cancelButton.setEnabled(running)
        for name in ("useExistingButton", "closeButton", "torchBuildComboBox", "envFolderEdit", "basePythonEdit"):
            getattr(self.ui, name).setEnabled(not running)


def open_in_slicer(ui_file: str, module_dir: Path, on_ready: Callable[[str], None]) -> tuple[Any, Any, Any]:
    """Show the dialog in 3D Slicer (PythonQt); returns what must stay referenced while it is open."""
    import qt
    import slicer

    dialog = slicer.util.loadUI(ui_file)
    ui = slicer.util.childWidgetVariables(dialog)
    ui.closeButton.connect("clicked()", dialog.close)
    timer = qt.QTimer()
    driver = EngineSetupDialog(
        ui, timer, module_dir=module_dir, on_ready=on_ready, settings_file=slicer.app.slicerUserSettingsFilePath,
        env=slicer.util.startupEnvironment(),
        choose_python=lambda: qt.QFileDialog.getOpenFileName(None, _("Choose the engine environment's python")))
    dialog.show()
    return dialog, timer, driver
