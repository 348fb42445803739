"""Open the "Set up engine" dialog under PyQt5 as Slicer shows it and save a PNG: ``python engine_setup_screenshot.py
MODULE_DIR SETTINGS_FILE OUT.png [DRIVER]`` (DRIVER e.g. 570.86.10, as nvidia-smi would report it)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from PyQt5 import QtCore, QtWidgets, uic

from MedSynthLib.enginesetup.dialog import EngineSetupDialog
from MedSynthLib.enginesetup.torchbuild import parse_driver_version

UI = Path(__file__).resolve().parents[2] / "MedSynth" / "Resources" / "UI" / "EngineSetup.ui"


def main(argv: list[str]) -> int:
    module_dir, settings, out = argv[:3]
    app = QtWidgets.QApplication(sys.argv[:1])
    dialog = uic.loadUi(str(UI))
    driver = parse_driver_version(argv[3]) if len(argv) > 3 else None
    setup = EngineSetupDialog(dialog, QtCore.QTimer(), module_dir=Path(module_dir), settings_file=settings,
                      on_ready=lambda python: None, candidates=[sys.executable], driver=driver, system="Linux")
    dialog.show()
    deadline = time.monotonic() + 30
    while setup.probing.busy and time.monotonic() < deadline:
        app.processEvents()
        time.sleep(0.02)
    for _ in range(20):
        app.processEvents()
    return 0 if dialog.grab().save(out) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
