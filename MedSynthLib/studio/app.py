"""``medsynth-studio``: the MedSynth panel and three slice views in one window.

    medsynth-studio                                  # start the panel; Start launches a local engine
    medsynth-studio --open CASE_DIR                  # show a case folder
    medsynth-studio --open CASE_DIR --screenshot shot.png   # render, save the window, exit (docs, tests)

VTK needs a real display for its views (an X server; Xvfb on a headless machine), not Qt's offscreen platform.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PyQt5 import QtCore, QtWidgets

from ..scene import SceneError
from .panel import StudioPanel
from .reader_study_widget import ReaderStudyWidget
from .slice_views import SliceViews
from .volumes import read_case

__all__ = ["StudioWindow", "main"]


class StudioWindow(QtWidgets.QMainWindow):
    """The panel (and the reader-study section) on the left, axial/coronal/sagittal views of the shown case on the right."""

    def __init__(self, state_dir: str | None = None) -> None:
        super().__init__()
        self.setWindowTitle("MedSynth Studio")
        self.panel = StudioPanel(state_dir=state_dir)
        self.readerStudy = ReaderStudyWidget()
        column = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(column)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.panel)
        layout.addWidget(self.readerStudy)
        scroll = QtWidgets.QScrollArea()
        scroll.setWidget(column)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(400)
        self.views = SliceViews()
        splitter = QtWidgets.QSplitter()
        splitter.addWidget(scroll)
        splitter.addWidget(self.views)
        splitter.setStretchFactor(1, 1)
        self.setCentralWidget(splitter)
        self.panel.caseReady.connect(self.open_case)
        self.views.pointPicked.connect(self.panel.place_sphere)
        self.panel.drawnChanged.connect(self.views.show_drawn)
        self.readerStudy.caseReady.connect(self.open_case)
        open_action = self.menuBar().addMenu("&File").addAction("&Open case folder...")
        open_action.triggered.connect(self._choose_case)

    def open_case(self, case_dir: str) -> None:
        """Show a BraTS-style case folder; a bad folder becomes one sentence in the panel."""

        def load() -> None:
            case = read_case(Path(case_dir))
            self.views.set_case(case)
            self.panel.set_case(Path(case_dir), case)

        self.panel.guard(load)

    def _choose_case(self) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Open a case folder", str(Path.home()))
        if folder:
            self.open_case(folder)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        message = self.panel.shutdown()
        if message:
            print(message, file=sys.stderr)
        super().closeEvent(event)


def screenshot(window: StudioWindow, path: Path) -> None:
    """Render the VTK views and save the whole window as it appears on screen."""
    app = QtWidgets.QApplication.instance()
    for _ in range(5):
        app.processEvents()
    window.views.render_all()
    app.processEvents()
    pixmap = window.screen().grabWindow(window.winId())
    if pixmap.isNull() or not pixmap.save(str(path)):
        raise OSError(f"Could not write the screenshot {path}; check the folder exists and is writable.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medsynth-studio", description="The MedSynth panel as a desktop app.")
    parser.add_argument("--open", type=Path, metavar="CASE_DIR", help="show this BraTS-style case folder")
    parser.add_argument("--screenshot", type=Path, metavar="FILE.png", help="save the window to FILE.png and exit")
    parser.add_argument("--state-dir", default=None, help="engine state folder (default ~/.medsynth/engine)")
    parser.add_argument("--size", default="1500x820", help="window size WxH (default 1500x820)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        width, height = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        print(f"--size {args.size} is not WIDTHxHEIGHT, e.g. 1500x820.", file=sys.stderr)
        return 2
    if args.screenshot and not args.open:
        print("--screenshot needs --open CASE_DIR (the case to show).", file=sys.stderr)
        return 2
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    window = StudioWindow(state_dir=args.state_dir)
    window.resize(width, height)
    window.show()
    if args.open:
        window.open_case(str(args.open))
        if window.panel.controller.error:
            print(window.panel.controller.error, file=sys.stderr)
            if args.screenshot:
                return 2
    if args.screenshot:
        QtCore.QTimer.singleShot(300, app.quit)
        app.exec_()
        try:
            screenshot(window, args.screenshot)
        except (OSError, SceneError) as exc:
            print(str(exc), file=sys.stderr)
            return 2
        print(args.screenshot)
        window.close()
        return 0
    return app.exec_()


if __name__ == "__main__":
    sys.exit(main())
