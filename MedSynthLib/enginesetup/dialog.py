"""The "Set up engine" dialog's behaviour over its widgets (``MedSynth/Resources/UI/EngineSetup.ui``).

It imports no Qt: the caller loads the .ui (Slicer's ``slicer.util.loadUI`` or PyQt5's ``uic``) and hands over the
child widgets and a timer, so the same code runs in Slicer (PythonQt) and under PyQt5 in tests. Only calls both
bindings share are used: setters, ``signal.connect`` and :func:`_read` for getters (PythonQt exposes Qt properties
as attributes, PyQt5 as methods). The work itself is :class:`~.runner.SetupRun` on its own thread; the timer only
collects its output, so the GUI never waits on pip.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .plan import SetupError, default_env_dir, find_base_python, find_wheelhouse, make_plan
from .runner import SetupRun, check_disk_space
from .torchbuild import BUILDS, build_named, detect_driver_version, recommended_build

__all__ = ["EngineSetupDialog"]


def _read(widget: Any, name: str) -> Any:
    value = getattr(widget, name)
    return value() if callable(value) else value


class EngineSetupDialog:
    """Wires the set-up widgets to a plan and a run; ``on_ready(python)`` gets the new environment's interpreter.

    ``steps`` and ``pip_options`` select a part of the plan and offline pip options (tests); ``driver`` skips the
    nvidia-smi query (tests) and ``system`` the platform (tests).
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
        detected = detect_driver_version() if driver == "detect" else driver
        recommended, why = recommended_build(detected, self.system)
        self.builds = [build_named(name, self.system) for name in (BUILDS if self.system != "Darwin" else ("cpu",))]
        for build in self.builds:
            ui.torchBuildComboBox.addItem(build.label)
        ui.torchBuildComboBox.setCurrentIndex([b.name for b in self.builds].index(recommended.name))
        ui.driverLabel.setText(why + " Choose another build to override.")
        ui.envFolderEdit.setText(str(default_env_dir(settings_file)))
        try:
            ui.basePythonEdit.setText(find_base_python(candidates, env=self._clean_env()))
        except SetupError as exc:
            ui.statusLabel.setText(str(exc))
        try:
            self.wheelhouse = find_wheelhouse(self.module_dir)
        except SetupError as exc:
            ui.statusLabel.setText(str(exc))
        timer.setInterval(100)
        timer.timeout.connect(self.tick)
        ui.torchBuildComboBox.currentIndexChanged.connect(lambda *args: self.show_plan())
        ui.setupButton.clicked.connect(lambda *args: self.start())
        ui.cancelButton.clicked.connect(lambda *args: self.cancel())
        ui.useExistingButton.clicked.connect(lambda *args: self.use_existing())
        self.show_plan()

    def _clean_env(self) -> dict[str, str]:
        base = dict(os.environ if self.env is None else self.env)
        return {k: v for k, v in base.items() if k not in ("PYTHONHOME", "PYTHONPATH")}

    def plan(self):
        build = self.builds[_read(self.ui.torchBuildComboBox, "currentIndex")]
        folder = str(_read(self.ui.envFolderEdit, "text")).strip()
        base = str(_read(self.ui.basePythonEdit, "text")).strip()
        if not base:
            raise SetupError("Choose the base Python (3.10 to 3.13) the environment is made from.")
        if self.wheelhouse is None:
            self.wheelhouse = find_wheelhouse(self.module_dir)
        return make_plan(Path(folder).expanduser(), base, self.wheelhouse, build, self.pip_options)

    def show_plan(self) -> None:
        """The commands set-up will run, before it runs (the user sees every download)."""
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
        self.ui.statusLabel.setText("Setting up the engine environment; this can take several minutes.")
        self.timer.start()
        self.update_buttons()

    def tick(self) -> None:
        """Collect the run's new output (timer, GUI thread; never waits)."""
        if self.run is None:
            return
        progress = self.run.poll()
        for line in progress.lines:
            self.ui.logText.appendPlainText(line)
        finished = progress.state != "running"
        self.ui.progressBar.setValue(progress.total if progress.state == "succeeded" else progress.step - 1)
        if finished:
            self.timer.stop()
            if progress.state == "succeeded":
                python = str(self.run.plan.python)
                self.ui.statusLabel.setText(f"The engine environment is ready: {python}. Start uses it from now on.")
                self.on_ready(python)
            else:
                self.ui.statusLabel.setText(progress.error)
            self.run = None
        else:
            self.ui.statusLabel.setText(f"Step {progress.step} of {progress.total}: {progress.title}...")
        self.update_buttons()

    def cancel(self) -> None:
        if self.run is not None:
            self.ui.statusLabel.setText("Cancelling...")
            self.run.cancel()

    def use_existing(self) -> None:
        python = self.choose_python() if self.choose_python else ""
        if python:
            self.ui.statusLabel.setText(f"Start will use {python}.")
            self.on_ready(python)

    def update_buttons(self) -> None:
        running = self.run is not None
        self.ui.setupButton.setEnabled(not running and self.wheelhouse is not None)
        self.ui.cancelButton.setEnabled(running)
        for name in ("useExistingButton", "closeButton", "torchBuildComboBox", "envFolderEdit", "basePythonEdit"):
            getattr(self.ui, name).setEnabled(not running)
