"""The parts of the MedSynth panel that Slicer's own widgets show: MRML node selectors in place of the .ui's plain
combo boxes, and the fine-tune's loss chart (a qMRMLPlotWidget) and sample mosaic.

The .ui holds plain Qt widgets only, so that medsynth-studio (PyQt5) loads the same file; in Slicer these helpers put
Slicer's widgets in. Slicer's Python (PythonQt) only: ``qt`` and ``slicer`` are imported where they are used.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .controller import latest_mosaic
from .prepare_section import PreparedCase, database_studies, load_prepared

__all__ = ["FinetuneView", "PrepareView", "mrml_selector", "scalar_volume_selector"]


def mrml_selector(placeholder: Any, selector: Any, slot: Callable, *signals: str) -> Any:
    """Put ``selector`` where the .ui has ``placeholder``, on the user's scene, calling ``slot`` when it changes."""
    import slicer

    selector.noneEnabled = True
    selector.setMRMLScene(slicer.mrmlScene)
    placeholder.parentWidget().layout().replaceWidget(placeholder, selector)
    placeholder.hide()
    for signal in signals or ("currentNodeChanged(vtkMRMLNode*)",):
        selector.connect(signal, slot)
    return selector


def scalar_volume_selector() -> Any:
    """A node combo box of scalar volumes only (not label maps, which are scalar volume subclasses)."""
    import slicer

    selector = slicer.qMRMLNodeComboBox()
    selector.nodeTypes = ["vtkMRMLScalarVolumeNode"]
    selector.showChildNodeTypes = False
    selector.addEnabled = selector.removeEnabled = False
    return selector


class FinetuneView:
    """The loss chart in ``container`` and the newest sample mosaic in ``mosaic_label``, redrawn only when new loss
    rows arrive (the chart lives in the loss plot's own scene, see MedSynthLib.lossplot)."""

    def __init__(self, container: Any, mosaic_label: Any) -> None:
        import slicer

        self.plot_widget = slicer.qMRMLPlotWidget()
        self.plot_widget.setMRMLScene(slicer.mrmlScene)
        container.layout().addWidget(self.plot_widget)
        self.mosaic_label = mosaic_label
        self.mosaic_shown = ""

    def show(self, logic: Any, job: dict) -> None:
        """Add the job's new loss rows to the chart; show a new mosaic when there are new rows."""
        import qt

        plot = logic.lossPlot
        plotted = plot.rows if plot is not None else -1
        view = logic.updateLossPlot(logic.controller.tracker.losses)
        if plot is None:
            self.plot_widget.setMRMLScene(logic.lossPlot.scene)
            self.plot_widget.setMRMLPlotViewNode(view)
        if logic.lossPlot.rows == plotted:
            return
        samples = Path(job.get("output_dir") or "") / "samples"
        newest = latest_mosaic([str(p) for p in samples.glob("mosaic_step*.png")]) if samples.is_dir() else None
        if newest and newest != self.mosaic_shown:
            width = max(self.mosaic_label.width, 200)
            self.mosaic_label.setPixmap(qt.QPixmap(newest).scaledToWidth(width))
            self.mosaic_shown = newest


class PrepareView:
    """The Prepare section's lists: the DICOM database's studies to pick, and the prepared cases with their QC
    verdict (flagged ones in red) and the selected case's QC mosaic."""

    def __init__(self, ui: Any) -> None:
        self.ui = ui
        self.studies: list = []
        self.cases: list[PreparedCase] = []
        ui.prepareCasesList.connect("currentRowChanged(int)", self.show_qc)

    def list_studies(self, db: Any) -> None:
        self.studies = database_studies(db)
        self.ui.prepareStudiesList.clear()
        for study in self.studies:
            self.ui.prepareStudiesList.addItem(study.label)

    def picked_studies(self) -> list[str]:
        listing = self.ui.prepareStudiesList
        return [self.studies[row].uid for row in sorted(listing.row(item) for item in listing.selectedItems())]

    def finished(self, logic: Any, job: dict) -> None:
        """A prepare job ended: list its cases with their verdicts and load each into the scene."""
        import qt

        self.cases = load_prepared(logic, job)
        listing = self.ui.prepareCasesList
        listing.clear()
        for case in self.cases:
            listing.addItem(case.verdict)
            if case.flags:
                listing.item(listing.count - 1).setForeground(qt.QBrush(qt.QColor("#b00000")))
        if self.cases:
            listing.setCurrentRow(0)

    def show_qc(self, row: int) -> None:
        import qt

        if 0 <= row < len(self.cases) and self.cases[row].qc_png.is_file():
            width = max(self.ui.prepareQcLabel.width, 240)
            self.ui.prepareQcLabel.setPixmap(qt.QPixmap(str(self.cases[row].qc_png)).scaledToWidth(width))
