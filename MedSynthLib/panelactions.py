"""How the MedSynth panel runs what the user clicks: the failure is shown where it happened, and the engine call
runs on the worker thread with its result handed back on the GUI thread.

``prepare()`` runs on the GUI thread (it reads the panel and the scene) and returns the engine call; the call runs on
the Logic's worker thread (:meth:`~MedSynthLib.panellogic.PanelLogic.inBackground`); ``done(result)`` and failures
come back through the panel's timer. Expected failures (bad input, engine errors, files) go to the panel's error
line, anything else is logged with its traceback too. Slicer's Python only (``slicer.util.tryWithErrorDisplay``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .client import EngineError
from .controller import InputError
from .scene import SceneError

__all__ = ["EXPECTED_ERRORS", "PanelActions"]

#: failures the user can act on: shown as one sentence, no traceback
EXPECTED_ERRORS = (InputError, EngineError, SceneError, OSError, ValueError)


class PanelActions:
    """Runs actions for a panel whose ``logic`` has a controller (its ``error`` line) and ``refresh`` redraws it."""

    def __init__(self, logic: Any, refresh: Callable[[], None]) -> None:
        self.logic, self.refresh = logic, refresh

    def run(self, message: str, action: Callable[[], Any]) -> Any:
        """``action()`` here and now; a failure goes to the error line (and Slicer's error display) and gives None."""
        import slicer

        self.logic.controller.error = ""
        try:
            with slicer.util.tryWithErrorDisplay(message):
                return action()
        except EXPECTED_ERRORS as exc:
            self.logic.controller.error = str(exc)
            return None
        finally:
            self.refresh()

    def in_background(self, message: str, prepare: Callable[[], Callable[[], Any] | None],
                      done: Callable[[Any], None] | None = None) -> None:
        """``prepare()`` here, the engine call it returns on the worker thread, ``done(result)`` back here."""
        work = self.run(message, prepare)
        if work is None:
            return

        def finished(result: Any) -> None:
            if done is not None:
                self.run(message, lambda: done(result))
            self.refresh()

        def failed(exc: BaseException) -> None:
            self.logic.controller.error = str(exc)
            if not isinstance(exc, EXPECTED_ERRORS):
                logging.error("%s %s", message, exc, exc_info=exc)
            self.refresh()

        self.logic.inBackground(work, finished, failed)
        self.refresh()
