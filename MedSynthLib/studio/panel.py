"""The MedSynth panel in PyQt5: the shared ``MedSynth.ui`` driven by :class:`MedSynthLib.controller.PanelController`.

Every action goes through :meth:`StudioPanel.guard`, so a refused input or an unreachable engine becomes one
sentence in the panel's error line and the GUI stays usable. A QTimer polls the engine; nothing blocks.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PyQt5 import QtCore, QtGui, QtWidgets, uic

from ..client import EngineError
from ..controller import InputError, PanelController, first_case_dir, latest_mosaic, loss_series
from ..launcher import default_state_dir
from ..scene import SceneError

__all__ = ["StudioPanel", "LossChart", "find_ui_file"]

_SERIES_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd")
_BUTTONS = {
    "generateButton": "generate", "finetuneButton": "finetune", "exportButton": "export", "cancelButton": "cancel",
    "resumeButton": "resume", "startEngineButton": "start_engine", "connectButton": "start_engine",
    "stopEngineButton": "stop_engine", "addSegButton": "add_seg", "addCtButton": "add_ct",
}


def find_ui_file() -> Path:
    """The panel layout shared with the Slicer module (``MedSynth/Resources/UI/MedSynth.ui`` in the source tree)."""
    here = Path(__file__).resolve()
    for candidate in (here.parent / "MedSynth.ui", here.parents[2] / "MedSynth" / "Resources" / "UI" / "MedSynth.ui"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError("MedSynth.ui was not found; run medsynth-studio from a MedSynth source checkout (pip install -e .).")


class LossChart(QtWidgets.QWidget):
    """A small line chart of the fine-tune losses (one line per loss name), drawn with QPainter."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.series: dict[str, tuple[list[int], list[float]]] = {}
        self.setMinimumHeight(130)

    def set_series(self, series: dict[str, tuple[list[int], list[float]]]) -> None:
        self.series = series
        self.update()

    def paintEvent(self, event: QtGui.QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QtGui.QPainter(self)
        painter.fillRect(self.rect(), QtGui.QColor("white"))
        box = self.rect().adjusted(36, 8, -8, -20)
        painter.setPen(QtGui.QColor("#888"))
        painter.drawRect(box)
        points = [(s, v) for steps, values in self.series.values() for s, v in zip(steps, values, strict=True)]
        if not points:
            painter.drawText(box, QtCore.Qt.AlignCenter, "Loss curve appears while fine-tuning.")
            return
        x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
        y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
        x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1e-6)
        painter.drawText(2, box.top() + 10, f"{y1:.3g}")
        painter.drawText(2, box.bottom(), f"{y0:.3g}")
        painter.drawText(box.left(), self.height() - 4, f"step {x0}")
        painter.drawText(box.right() - 70, self.height() - 4, f"step {x1}")
        for index, (name, (steps, values)) in enumerate(sorted(self.series.items())):
            colour = QtGui.QColor(_SERIES_COLOURS[index % len(_SERIES_COLOURS)])
            painter.setPen(QtGui.QPen(colour, 2))
            line = QtGui.QPolygonF([
                QtCore.QPointF(box.left() + (s - x0) / (x1 - x0) * box.width(), box.bottom() - (v - y0) / (y1 - y0) * box.height())
                for s, v in zip(steps, values, strict=True)
            ])
            painter.drawPolyline(line)
            painter.drawText(box.left() + 6 + 60 * index, box.top() + 14, name)


class StudioPanel(QtWidgets.QWidget):
    """The panel: engine, Generate, Channels, Fine-tune, Export and the job line."""

    #: A generated case folder is ready to show.
    caseReady = QtCore.pyqtSignal(str)

    def __init__(self, controller: PanelController | None = None, *, state_dir: str | None = None,
                 poll_ms: int = 500, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        uic.loadUi(str(find_ui_file()), self)
        self.controller = controller or PanelController()
        self.state_dir = state_dir or str(default_state_dir())
        self.enginePythonEdit.setText(sys.executable)
        self.lossChart = LossChart(self.lossChartContainer)
        self.lossChartContainer.layout().addWidget(self.lossChart)
        self._mosaic_shown = ""
        self.generateButton.clicked.connect(lambda: self.guard(self.on_generate))
        self.cancelButton.clicked.connect(lambda: self.guard(self.controller.cancel))
        self.resumeButton.clicked.connect(lambda: self.guard(self.controller.resume))
        self.finetuneButton.clicked.connect(lambda: self.guard(self.on_finetune))
        self.exportButton.clicked.connect(lambda: self.guard(self.on_export))
        self.startEngineButton.clicked.connect(lambda: self.guard(self.on_start_engine, busy=True))
        self.connectButton.clicked.connect(lambda: self.guard(self.on_connect, busy=True))
        self.stopEngineButton.clicked.connect(lambda: self.guard(self.on_stop_engine))
        self.addSegButton.clicked.connect(lambda: self.guard(lambda: self.on_channel_tool("seg")))
        self.addCtButton.clicked.connect(lambda: self.guard(lambda: self.on_channel_tool("ct")))
        self.dataBrowseButton.clicked.connect(lambda: self._browse(self.dataFolderEdit))
        self.exportBrowseButton.clicked.connect(lambda: self._browse(self.exportFolderEdit))
        self.channelVolumeComboBox.currentTextChanged.connect(lambda _text: self.refresh())
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(poll_ms)
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        self.refresh()

    # -- plumbing -----------------------------------------------------------------------------------------

    def guard(self, action: Callable[[], Any], busy: bool = False, fresh: bool = True) -> Any:
        """Run an action; a refusal becomes one sentence in the panel (never a traceback, never a frozen GUI).

        ``fresh``: a user action clears the previous message first; a timer tick keeps it.
        """
        if busy:
            QtWidgets.QApplication.setOverrideCursor(QtCore.Qt.WaitCursor)
        if fresh:
            self.controller.error = ""
        try:
            return action()
        except (InputError, EngineError, SceneError, ValueError, OSError) as exc:
            self.controller.error = str(exc)
            return None
        finally:
            if busy:
                QtWidgets.QApplication.restoreOverrideCursor()
            self.refresh()

    def _browse(self, edit: QtWidgets.QLineEdit) -> None:
        folder = QtWidgets.QFileDialog.getExistingDirectory(self, "Choose a folder", edit.text() or str(Path.home()))
        if folder:
            edit.setText(folder)

    # -- actions ------------------------------------------------------------------------------------------

    def on_start_engine(self) -> None:
        self.controller.start_engine(self.enginePythonEdit.text().strip(), self.state_dir)
        self._fill_models()

    def on_connect(self) -> None:
        self.controller.connect(self.engineUrlEdit.text(), credential=self.tokenFileEdit.text())
        self._fill_models()

    def on_stop_engine(self) -> None:
        if not self.controller.stop_engine():
            raise InputError("A job is running; cancel it first or leave the engine running.")
        self._fill_models()

    def _fill_models(self) -> None:
        generators = [m["id"] for m in self.controller.models]
        bases = self.controller.finetune_bases() if self.controller.session.connected else []
        for box, ids in ((self.modelComboBox, generators), (self.baseModelComboBox, bases)):
            current = box.currentText()
            box.clear()
            box.addItems(ids)
            if current in ids or (current and box.isEditable()):
                box.setCurrentText(current)

    def on_generate(self) -> None:
        self.controller.generate(
            model=self.modelComboBox.currentText(), count=self.countSpinBox.value(), seed=self.seedSpinBox.value(),
            channels=self.channelsEdit.text(), tumour=self.tumourCheckBox.isChecked(),
            voxel_size=self.voxelSizeSpinBox.value(),
        )

    def on_finetune(self) -> None:
        self._mosaic_shown = ""
        self.lossChart.set_series({})
        self.mosaicLabel.setText("No sample mosaic yet.")
        self.controller.finetune(
            data=self.dataFolderEdit.text(), model=self.baseModelComboBox.currentText(),
            channels=self.finetuneChannelsEdit.text(), steps=self.stepsSpinBox.value(),
        )

    def on_export(self) -> None:
        self.controller.export(
            out=self.exportFolderEdit.text(), layout=self.layoutComboBox.currentText(),
            channels=self.exportChannelsEdit.text(), audit_against=self.exportAuditEdit.text(),
        )

    def on_channel_tool(self, channel: str) -> None:
        self.controller.channel_tool(channel, self.channelVolumeComboBox.currentText() or None)

    def set_volumes(self, names: list[str]) -> None:
        """The loaded volumes the Channels tools may act on."""
        self.channelVolumeComboBox.clear()
        self.channelVolumeComboBox.addItems(names)

    # -- polling ------------------------------------------------------------------------------------------

    def tick(self) -> None:
        """One QTimer tick: poll the job, show what ended, redraw."""
        self.guard(self._poll, fresh=False)

    def _poll(self) -> None:
        job = self.controller.poll()
        if job and job.get("kind") == "finetune":
            self.lossChart.set_series(loss_series(self.controller.tracker.losses))
            self._show_mosaic(job)
        finished = self.controller.take_finished()
        if finished and finished["state"] == "succeeded" and finished["kind"] == "generate":
            self.caseReady.emit(str(first_case_dir(finished["output_dir"])))

    def _show_mosaic(self, job: dict[str, Any]) -> None:
        local = Path(job.get("output_dir") or "") / "samples"
        names = [str(p) for p in local.glob("mosaic_step*.png")] if local.is_dir() else []
        newest = latest_mosaic(names)
        if newest is None and self.controller.session.connected and job.get("state") == "succeeded":
            remote = latest_mosaic(self.controller.session.client.files(job["id"]))
            if remote:
                newest = str(self.controller.session.client.download(job["id"], remote, Path(tempfile.mkdtemp()) / "mosaic.png"))
        if newest and newest != self._mosaic_shown:
            pixmap = QtGui.QPixmap(newest)
            if not pixmap.isNull():
                self.mosaicLabel.setPixmap(pixmap.scaledToWidth(max(self.mosaicLabel.width(), 200)))
                self._mosaic_shown = newest

    def refresh(self) -> None:
        """Draw the controller's view: status, progress, enabled buttons and why the others are not."""
        view = self.controller.view({"volume": self.channelVolumeComboBox.currentText() or None})
        self.engineStatusLabel.setText(view.engine_status)
        self.jobStatusLabel.setText(view.job_status)
        self.progressBar.setValue(view.progress)
        self.errorLabel.setText(view.error)
        for widget_name, key in _BUTTONS.items():
            button = getattr(self, widget_name)
            button.setEnabled(view.enabled[key])
            button.setToolTip(view.reasons[key])
        missing = dict.fromkeys(r for r in (view.reasons["add_seg"], view.reasons["add_ct"]) if r)
        self.channelsStatusLabel.setText("\n".join(missing))

    def shutdown(self) -> str:
        """On window close: stop an engine we started unless a job runs; returns what happened, in a sentence."""
        self.timer.stop()
        if self.controller.session.process is None:
            return ""
        if self.controller.stop_engine():
            return "The engine was stopped."
        return f"The engine keeps running for the {self.controller.tracker.kind} job (pid {self.controller.session.process.pid})."
