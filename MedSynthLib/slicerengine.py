"""Starting the panel's engine from 3D Slicer: which interpreter and data folders (this computer's Slicer
settings, never the scene) and the environment the engine process gets.

``MedSynthLogic`` (MedSynth/MedSynth.py) mixes :class:`SlicerEngineSettings` in beside
:class:`~MedSynthLib.panellogic.PanelLogic`, whose ``controller`` it uses. Slicer's Python only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from .controller import InputError
from .launcher import default_state_dir

__all__ = ["SlicerEngineSettings"]

PYTHON_KEY = "MedSynth/EnginePython"
FOLDERS_KEY = "MedSynth/AllowedFolders"


class SlicerEngineSettings:
    """The engine interpreter and allowed data folders in Slicer's settings, and the engine start they lead to."""

    controller: Any  # PanelLogic's

    @staticmethod
    def defaultEnginePython() -> str:
        """The interpreter from the settings (MedSynth/EnginePython), else empty (Start then explains Set up...)."""
        import slicer

        return str(slicer.util.settingsValue(PYTHON_KEY, "") or "")

    @staticmethod
    def rememberEnginePython(python: str) -> None:
        """The next session starts the same engine (a setting of this computer, not of the scene)."""
        import qt

        qt.QSettings().setValue(PYTHON_KEY, python)

    @staticmethod
    def allowedFolders() -> list[str]:
        """Data folders an engine started here may use besides the home (setting MedSynth/AllowedFolders)."""
        import slicer

        text = str(slicer.util.settingsValue(FOLDERS_KEY, "") or "")
        return [folder for folder in text.split(os.pathsep) if folder.strip()]

    @staticmethod
    def setAllowedFolders(folders: list[str]) -> None:
        import qt

        qt.QSettings().setValue(FOLDERS_KEY, os.pathsep.join(f.strip() for f in folders if f.strip()))

    def startEngine(self, python: str = "", stateDir: str | None = None) -> dict:
        """Start a local engine with ``python`` and wait for it (scripts; the panel uses :meth:`startEngineJob`)."""
        health = self.startEngineJob(python, stateDir)()
        self.rememberEnginePython(python)
        return health

    def startEngineJob(self, python: str, stateDir: str | None = None) -> Callable[[], dict]:
        """What the GUI thread prepares to start an engine: returns the call that starts it, for a worker thread."""
        import slicer

        if not python:
            raise InputError("No engine interpreter is set: click Set up... to create the engine's environment, or "
                             "choose the python of an environment where the MedSynth engine is installed.")
        # Another interpreter must not inherit Slicer's PYTHONHOME/PYTHONPATH/library paths.
        own = os.path.realpath(python) == os.path.realpath(sys.executable)
        env = None if own else slicer.util.startupEnvironment()
        state = stateDir or str(default_state_dir())
        allowed = tuple(self.allowedFolders())
        return lambda: self.controller.start_engine(python, state, env=env, allowed_dirs=allowed)
