"""The MedSynth panel in PyQt5: the shared ``MedSynth.ui`` driven by :class:`MedSynthLib.controller.PanelController`.

Every action goes through :meth:`StudioPanel.guard`, so a refused input or an unreachable engine becomes one
sentence in the panel's error line and the GUI stays usable. A QTimer polls the engine; nothing blocks.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PyQt5 import QtCore, QtGui, QtWidgets, uic

from ..client import EngineError
from ..controller import BUTTON_ACTIONS, InputError, PanelController, latest_mosaic, loss_series, result_to_load
from ..launcher import default_state_dir
from ..scene import MR_CHANNELS, SceneError, case_channel_files
from .volumes import CaseImages

__all__ = ["StudioPanel", "LossChart", "find_ui_file"]

_SERIES_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd")
#: The Tumour section's choices for the drawn tumour in the studio.
SPHERE, MASK_FILE = "Sphere: click a view to place it", "Mask file"


def find_ui_file(name: str = "MedSynth.ui") -> Path:
    """A layout shared with the Slicer modules (``MedSynth/Resources/UI/<name>`` in the source tree)."""
    here = Path(__file__).resolve()
    for candidate in (here.parent / name, here.parents[2] / "MedSynth" / "Resources" / "UI" / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{name} was not found; run medsynth-studio from a MedSynth source checkout (pip install -e .).")


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
        points = [(s, v) for steps, values in self.series.values() for s, v in zip(steps, values)]
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
                for s, v in zip(steps, values)
            ])
            painter.drawPolyline(line)
            painter.drawText(box.left() + 6 + 60 * index, box.top() + 14, name)


class StudioPanel(QtWidgets.QWidget):
    """The panel: engine, Generate, Channels, Tumour, Fine-tune, Export and the job line."""

    #: A case folder (generated, with an added channel or tumour) is ready to show.
    caseReady = QtCore.pyqtSignal(str)
    #: The drawn tumour changed: (0/1 array on the shown case's grid or None, centre in mm or None).
    drawnChanged = QtCore.pyqtSignal(object, object)

    def __init__(self, controller: PanelController | None = None, *, state_dir: str | None = None,
                 poll_ms: int = 500, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        uic.loadUi(str(find_ui_file()), self)
        for group in (self.cohortGroup, self.progressionGroup):  # the Slicer module's sections; the CLI does both here
            group.hide()
        self.controller = controller or PanelController()
        self.state_dir = state_dir or str(default_state_dir())
        self.enginePythonEdit.setText(sys.executable)
        self.lossChart = LossChart(self.lossChartContainer)
        self.lossChartContainer.layout().addWidget(self.lossChart)
        self._mosaic_shown = ""
        self.generateButton.clicked.connect(lambda: self.guard(self.on_generate))
        self.modelComboBox.currentTextChanged.connect(self.show_model)
        self.show_model(self.modelComboBox.currentText())
        self.cancelButton.clicked.connect(lambda: self.guard(self.controller.cancel))
        self.resumeButton.clicked.connect(lambda: self.guard(self.controller.resume))
        self.finetuneButton.clicked.connect(lambda: self.guard(self.on_finetune))
        self.exportButton.clicked.connect(lambda: self.guard(self.on_export))
        self.startEngineButton.clicked.connect(lambda: self.guard(self.on_start_engine, busy=True))
        self.setupEngineButton.hide()  # Slicer's set-up; the studio runs from a checkout, whose .venv has the engine
        self.prepareGroup.hide()  # Slicer's: it picks studies from Slicer's DICOM database and shows QC in its views
        self.connectButton.clicked.connect(lambda: self.guard(self.on_connect, busy=True))
        self.stopEngineButton.clicked.connect(lambda: self.guard(self.on_stop_engine))
        self.addSegButton.clicked.connect(lambda: self.guard(lambda: self.on_channel_tool("seg")))
        self.addCtButton.clicked.connect(lambda: self.guard(lambda: self.on_channel_tool("ct")))
        self.dataBrowseButton.clicked.connect(lambda: self._browse(self.dataFolderEdit))
        self.exportBrowseButton.clicked.connect(lambda: self._browse(self.exportFolderEdit))
        self.channelVolumeComboBox.currentTextChanged.connect(lambda _text: self.refresh())
        self.case_dir: Path | None = None
        self.case: CaseImages | None = None
        self.sphere_centre: tuple[float, float, float] | None = None
        self.mask_file: Path | None = None
        self._setup_tumour()
        self.timer = QtCore.QTimer(self)
        self.timer.setInterval(poll_ms)
        self.timer.timeout.connect(self.tick)
        self.timer.start()
        self.refresh()

    def _setup_tumour(self) -> None:
        """The studio's way to draw: a sphere placed by a click in a view, or a mask NIfTI file (BraTS codes or a region)."""
        self.tumourSegmentComboBox.addItem(SPHERE)
        self.radiusSpinBox = QtWidgets.QDoubleSpinBox()
        self.radiusSpinBox.setObjectName("radiusSpinBox")
        self.radiusSpinBox.setRange(2.0, 60.0)
        self.radiusSpinBox.setValue(15.0)
        self.radiusSpinBox.setSuffix(" mm")
        self.radiusSpinBox.valueChanged.connect(lambda _value: self._drawn_changed())
        self.loadMaskButton = QtWidgets.QPushButton("Load mask NIfTI...")
        self.loadMaskButton.setObjectName("loadMaskButton")
        self.loadMaskButton.clicked.connect(lambda: self.guard(self._choose_mask))
        self.tumourGroupLayout.insertRow(1, "Sphere radius:", self.radiusSpinBox)
        self.tumourGroupLayout.insertRow(2, "", self.loadMaskButton)
        self.tumourSegmentComboBox.currentTextChanged.connect(lambda _text: self._drawn_changed())
        self.tumourVolumeComboBox.currentTextChanged.connect(lambda _text: self.refresh())
        self.tumourGenerateButton.clicked.connect(lambda: self.guard(lambda: self.on_tumour("generate")))
        self.tumourAddButton.clicked.connect(lambda: self.guard(lambda: self.on_tumour("add")))

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
        for name, ids in self.controller.model_choices().items():
            box = getattr(self, name)
            current = box.currentText()
            box.clear()
            box.addItems(ids)
            if current in ids or (current and box.isEditable()):
                box.setCurrentText(current)

    def show_model(self, model_id: str) -> None:
        """The chosen model's validity row, and the truncation field where the model takes it."""
        self.modelValidityLabel.setText(self.controller.validity_text(model_id))
        for widget in (self.truncationLabel, self.truncationSpinBox):
            widget.setVisible(self.controller.takes_truncation(model_id))

    def on_generate(self) -> None:
        self.controller.generate(
            model=self.modelComboBox.currentText(), count=self.countSpinBox.value(), seed=self.seedSpinBox.value(),
            channels=self.channelsEdit.text(), tumour=self.tumourCheckBox.isChecked(),
            voxel_size=self.voxelSizeSpinBox.value(), truncation=self.truncationSpinBox.value(),
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
        """Copy the shown case's MR sequences where the engine reads them and submit an add-channel job."""
        reason = self.controller.channel_tool_reason(channel, self.channelVolumeComboBox.currentText() or None)
        if reason:
            raise InputError(reason)
        self.controller.add_channel(channel, self._copy_case())

    def _copy_case(self) -> Path:
        """The shown case's MR sequences copied into a new case folder under the controller's work folder."""
        if self.case_dir is None:
            raise InputError("Open a case first (File > Open case folder, or generate one).")
        files = {c: p for c, p in case_channel_files(self.case_dir).items() if c in MR_CHANNELS}
        if not files:
            raise InputError(f"{self.case_dir} has no MR sequence (t1, t1ce, t2 or flair) to work from.")
        target = self.controller.input_folder(self.case_dir.name)
        target.mkdir()
        for channel, path in files.items():
            suffix = ".nii.gz" if path.name.endswith(".nii.gz") else ".nii"
            shutil.copyfile(path, target / f"{target.name}_{channel}{suffix}")
        return target

    def set_case(self, case_dir: Path, case: CaseImages) -> None:
        """The case shown in the views: the Channels and Tumour tools act on it; a drawn sphere is forgotten."""
        self.case_dir, self.case = Path(case_dir), case
        self.sphere_centre = None
        self.set_volumes([f"{case.case_id} {channel}" for channel in case.images])

    def set_volumes(self, names: list[str]) -> None:
        """The loaded volumes the Channels and Tumour tools may act on."""
        for box in (self.channelVolumeComboBox, self.tumourVolumeComboBox):
            box.clear()
            box.addItems(names)

    # -- tumour ---------------------------------------------------------------------------------------------

    def place_sphere(self, centre_mm: tuple[float, float, float]) -> None:
        """A click in a view: the drawn tumour becomes a sphere there (radius from the panel)."""
        if self.case is None:
            return
        self.sphere_centre = tuple(float(c) for c in centre_mm)
        self.tumourSegmentComboBox.setCurrentText(SPHERE)
        self._drawn_changed()

    def sphere_mask(self) -> np.ndarray | None:
        """The drawn sphere as a 0/1 array on the shown case's (reoriented) grid, or None if none is placed."""
        if self.case is None or self.sphere_centre is None:
            return None
        axes = [np.arange(n) * s for n, s in zip(self.case.shape, self.case.spacing)]
        x, y, z = np.meshgrid(*axes, indexing="ij", sparse=True)
        cx, cy, cz = self.sphere_centre
        inside = (x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2 <= self.radiusSpinBox.value() ** 2
        return inside.astype(np.uint8) if inside.any() else None

    def _drawn_changed(self) -> None:
        sphere = self.tumourSegmentComboBox.currentText() == SPHERE
        self.drawnChanged.emit(self.sphere_mask() if sphere else None, self.sphere_centre if sphere else None)
        self.refresh()

    def _choose_mask(self) -> None:
        name, _ = QtWidgets.QFileDialog.getOpenFileName(self, "Tumour mask", str(Path.home()), "NIfTI (*.nii *.nii.gz)")
        if name:
            self.use_mask_file(Path(name))

    def use_mask_file(self, path: Path) -> None:
        """Use a mask NIfTI as the drawn tumour (BraTS codes if 'Segments are BraTS labels' is ticked, else a region)."""
        if not Path(path).is_file():
            raise InputError(f"The mask file {path} does not exist.")
        self.mask_file = Path(path).absolute()
        label = f"{MASK_FILE}: {self.mask_file.name}"
        if self.tumourSegmentComboBox.count() > 1:
            self.tumourSegmentComboBox.removeItem(1)
        self.tumourSegmentComboBox.addItem(label)
        self.tumourSegmentComboBox.setCurrentText(label)

    def _drawn_segment(self) -> str | None:
        """What the controller's enablement calls the selected drawn tumour (None when nothing is drawn)."""
        if self.tumourSegmentComboBox.currentText() == SPHERE:
            return "sphere" if self.sphere_centre is not None else None
        return "mask-file" if self.mask_file is not None else None

    def _write_drawn(self) -> tuple[Path, bool]:
        """The drawn tumour as a NIfTI file for the engine: (path, whether it is an outline to grow a tumour from)."""
        if self.tumourSegmentComboBox.currentText() != SPHERE:
            if self.mask_file is None:
                raise InputError("Load a mask NIfTI file first, or choose the sphere.")
            return self.mask_file, not self.tumourLabelsCheckBox.isChecked()
        mask = self.sphere_mask()
        if mask is None or self.case is None or self.case.affine is None:
            raise InputError("Click in a view to place the tumour sphere first.")
        import nibabel as nib

        path = self.controller.input_folder("tumour").parent / "tumour-mask.nii.gz"
        nib.save(nib.Nifti1Image(mask, self.case.affine), str(path))
        return path, True

    def on_tumour(self, action: str) -> None:
        """Generate a new case with the drawn tumour, or add it to the shown case."""
        volume = self.tumourVolumeComboBox.currentText() or None
        reason = self.controller.tumour_reason(action, self._drawn_segment(), volume)
        if reason:
            raise InputError(reason)
        mask, outline = self._write_drawn()
        model, seed = self.tumourModelComboBox.currentText(), self.tumourSeedSpinBox.value()
        if action == "generate":
            self.controller.generate_with_tumour(mask=mask, outline=outline, model=model, seed=seed)
        else:
            self.controller.add_tumour(case_dir=self._copy_case(), mask=mask, outline=outline, model=model, seed=seed,
                                       margin_mm=self.tumourMarginSpinBox.value(),
                                       steps=self.tumourStepsSpinBox.value() or None)

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
        what = result_to_load(finished) if finished else None
        if what is not None:
            kind, value = what
            self.caseReady.emit(str(value if kind == "case" else value[0].parent))

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
        view = self.controller.view({
            "volume": self.channelVolumeComboBox.currentText() or None, "segment": self._drawn_segment(),
            "case": self.tumourVolumeComboBox.currentText() or None,
        })
        self.engineStatusLabel.setText(view.engine_status)
        self.jobStatusLabel.setText(view.job_status)
        self.progressBar.setValue(view.progress)
        self.errorLabel.setText(view.error)
        for widget_name, key in BUTTON_ACTIONS.items():
            button = getattr(self, widget_name)
            button.setEnabled(view.enabled[key])
            button.setToolTip(view.reasons[key])
        self.channelsStatusLabel.setText(view.section_status("add_seg", "add_ct"))
        self.tumourStatusLabel.setText(view.section_status("tumour_generate", "tumour_add"))

    def shutdown(self) -> str:
        """On window close: stop an engine we started unless a job runs; returns what happened, in a sentence."""
        self.timer.stop()
        if self.controller.session.process is None:
            return ""
        if self.controller.stop_engine():
            return "The engine was stopped."
        return f"The engine keeps running for the {self.controller.tracker.kind} job (pid {self.controller.session.process.pid})."
