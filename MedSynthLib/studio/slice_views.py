"""Axial, coronal and sagittal VTK views of one channel with the BraTS label map overlaid."""

from __future__ import annotations

import numpy as np
import vtk
from PyQt5 import QtCore, QtWidgets
from vtk.util import numpy_support
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor

from ..conventions import BRATS_LABEL_COLOURS, BRATS_LABEL_NAMES, BRATS_LABELS
from ..scene import CT_PRESETS
from .volumes import CaseImages

__all__ = ["SliceViews", "VIEWS"]

#: name -> (axis the view looks along, camera direction, view-up), radiological convention (patient right on the left).
VIEWS = {
    "Axial": (2, (0, 0, 1), (0, 1, 0)),
    "Coronal": (1, (0, -1, 0), (0, 0, 1)),
    "Sagittal": (0, (1, 0, 0), (0, 0, 1)),
}
LABEL_OPACITY = 0.45
#: The drawn tumour (before it is sent to the engine) is shown in this colour.
DRAWN_COLOUR = (0.1, 0.85, 1.0)


def image_data(array: np.ndarray, spacing: tuple[float, float, float]) -> vtk.vtkImageData:
    """A vtkImageData holding ``array`` (indexed x, y, z) with the given voxel size."""
    data = vtk.vtkImageData()
    data.SetDimensions(*array.shape)
    data.SetSpacing(*spacing)
    scalars = numpy_support.numpy_to_vtk(np.ascontiguousarray(array).ravel(order="F"), deep=True)
    data.GetPointData().SetScalars(scalars)
    return data


def label_table() -> vtk.vtkLookupTable:
    """BraTS colours for codes 1, 2, 4; everything else transparent."""
    table = vtk.vtkLookupTable()
    table.SetNumberOfTableValues(5)
    table.SetTableRange(0, 4)
    for code in range(5):
        r, g, b = BRATS_LABEL_COLOURS.get(code, (0.0, 0.0, 0.0))
        table.SetTableValue(code, r, g, b, 1.0 if code in BRATS_LABEL_COLOURS else 0.0)
    table.Build()
    return table


def drawn_table() -> vtk.vtkLookupTable:
    """The drawn tumour: 0 transparent, 1 cyan."""
    table = vtk.vtkLookupTable()
    table.SetNumberOfTableValues(2)
    table.SetTableRange(0, 1)
    table.SetTableValue(0, 0.0, 0.0, 0.0, 0.0)
    table.SetTableValue(1, *DRAWN_COLOUR, 1.0)
    table.Build()
    return table


class SliceView(QVTKRenderWindowInteractor):
    """One orthogonal view: a grey image slice and the label slice, through the same focal point.

    A left click reports the clicked point in mm (``picked``), which the Tumour section uses as a sphere's centre.
    """

    def __init__(self, name: str, parent: QtWidgets.QWidget | None = None, picked=None) -> None:
        super().__init__(parent)
        self.name = name
        self._picked = picked
        self._focus_mm: tuple[float, float, float] | None = None
        self.renderer = vtk.vtkRenderer()
        self.renderer.SetBackground(0.0, 0.0, 0.0)
        self.GetRenderWindow().AddRenderer(self.renderer)
        self.GetRenderWindow().GetInteractor().SetInteractorStyle(vtk.vtkInteractorStyleImage())
        self.grey = self._slice()
        self.label = self._slice()
        self.label.GetProperty().SetLookupTable(label_table())
        self.label.GetProperty().UseLookupTableScalarRangeOn()
        self.label.GetProperty().SetInterpolationTypeToNearest()
        self.label.GetProperty().SetOpacity(LABEL_OPACITY)
        self.drawn = self._slice()
        self.drawn.GetProperty().SetLookupTable(drawn_table())
        self.drawn.GetProperty().UseLookupTableScalarRangeOn()
        self.drawn.GetProperty().SetInterpolationTypeToNearest()
        self.drawn.GetProperty().SetOpacity(0.6)
        self.GetRenderWindow().GetInteractor().AddObserver("LeftButtonPressEvent", self._on_click, 1.0)
        self.text = vtk.vtkTextActor()
        self.text.GetTextProperty().SetFontSize(14)
        self.text.GetTextProperty().SetColor(1.0, 0.85, 0.3)
        self.text.SetPosition(6, 6)
        self.renderer.AddActor2D(self.text)
        self.text.SetInput(name)

    def point_mm(self, x: int, y: int) -> tuple[float, float, float] | None:
        """The point under display pixel (x, y) on the shown slice, in the case's mm (None before a case is shown)."""
        if self._focus_mm is None:
            return None
        self.renderer.SetDisplayPoint(float(x), float(y), 0.0)
        self.renderer.DisplayToWorld()
        world = self.renderer.GetWorldPoint()
        point = [world[i] / (world[3] or 1.0) for i in range(3)]
        axis = VIEWS[self.name][0]
        point[axis] = self._focus_mm[axis]
        return tuple(point)

    def _on_click(self, interactor, event) -> None:
        point = self.point_mm(*interactor.GetEventPosition())
        if point is not None and self._picked is not None:
            self._picked(point)

    def show_drawn(self, mask: np.ndarray | None, spacing: tuple[float, float, float]) -> None:
        """Overlay the drawn tumour (a 0/1 array on the case grid), or hide it."""
        if mask is None:
            self.drawn.VisibilityOff()
        else:
            self.drawn.GetMapper().SetInputData(image_data(mask.astype(np.uint8), spacing))
            self.drawn.VisibilityOn()
        self.GetRenderWindow().Render()

    def fit(self) -> None:
        """Zoom so the whole slice fits the view, whatever the view's shape."""
        if not getattr(self, "_field", None):
            return
        width, height = max(self.width(), 1), max(self.height(), 1)
        horizontal, vertical = self._field
        scale = max(vertical / 2, horizontal / 2 * height / width) * 1.04
        self.renderer.GetActiveCamera().SetParallelScale(scale)
        self.renderer.ResetCameraClippingRange()

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self.fit()

    def _slice(self) -> vtk.vtkImageSlice:
        mapper = vtk.vtkImageResliceMapper()
        mapper.SliceFacesCameraOn()
        mapper.SliceAtFocalPointOn()
        actor = vtk.vtkImageSlice()
        actor.SetMapper(mapper)
        actor.VisibilityOff()
        self.renderer.AddViewProp(actor)
        return actor

    def show_case(self, case: CaseImages, channel: str, focus_mm: tuple[float, float, float]) -> None:
        image = case.images[channel]
        self.grey.GetMapper().SetInputData(image_data(image, case.spacing))
        if channel == "ct":  # Hounsfield units: Slicer's CT-Brain window/level
            window, level = CT_PRESETS["CT-Brain"]
        else:
            low, high = np.percentile(image[image > image.min()] if (image > image.min()).any() else image, (1, 99.5))
            window, level = float(max(high - low, 1.0)), float((high + low) / 2)
        self.grey.GetProperty().SetColorWindow(window)
        self.grey.GetProperty().SetColorLevel(level)
        self.grey.VisibilityOn()
        if case.labels is not None:
            self.label.GetMapper().SetInputData(image_data(case.labels, case.spacing))
            self.label.VisibilityOn()
        else:
            self.label.VisibilityOff()
        axis, direction, up = VIEWS[self.name]
        extent = [s * (n - 1) for s, n in zip(case.spacing, image.shape)]
        # The slice goes through the focus; the view stays centred on the whole slice.
        focal = [e / 2 for e in extent]
        focal[axis] = focus_mm[axis]
        camera = self.renderer.GetActiveCamera()
        camera.ParallelProjectionOn()
        camera.SetFocalPoint(*focal)
        camera.SetPosition(*(f - 500.0 * d for f, d in zip(focal, direction)))
        camera.SetViewUp(*up)
        vertical = next(i for i in range(3) if up[i])
        horizontal = next(i for i in range(3) if i not in (axis, vertical))
        self._field = (extent[horizontal], extent[vertical])
        self._focus_mm = tuple(focus_mm)
        self.fit()
        self.text.SetInput(f"{self.name}  {case.case_id} {channel}")
        self.GetRenderWindow().Render()


class SliceViews(QtWidgets.QWidget):
    """The three views side by side, plus a channel chooser; a click in a view reports the point (``pointPicked``)."""

    #: A point clicked in a view, in mm on the shown case's grid (x, y, z).
    pointPicked = QtCore.pyqtSignal(tuple)

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.case: CaseImages | None = None
        self.focus_mm: tuple[float, float, float] | None = None
        layout = QtWidgets.QVBoxLayout(self)
        bar = QtWidgets.QHBoxLayout()
        bar.addWidget(QtWidgets.QLabel("Channel:"))
        self.channelComboBox = QtWidgets.QComboBox()
        self.channelComboBox.currentTextChanged.connect(self._show_channel)
        bar.addWidget(self.channelComboBox)
        self.caseLabel = QtWidgets.QLabel("No case loaded.")
        bar.addWidget(self.caseLabel, 1)
        layout.addLayout(bar)
        views = QtWidgets.QGridLayout()
        self.views = {name: SliceView(name, self, picked=self.pointPicked.emit) for name in VIEWS}
        for (row, column), view in zip(((0, 0), (0, 1), (1, 0)), self.views.values()):
            views.addWidget(view, row, column)
        views.addWidget(self._legend(), 1, 1)
        layout.addLayout(views, 1)

    @staticmethod
    def _legend() -> QtWidgets.QLabel:
        rows = "".join(
            f'<tr><td style="background-color: rgb({int(r * 255)},{int(g * 255)},{int(b * 255)})">&nbsp;&nbsp;&nbsp;&nbsp;</td>'
            f"<td>&nbsp;{code} {BRATS_LABELS[code]}: {BRATS_LABEL_NAMES[code]}</td></tr>"
            for code, (r, g, b) in BRATS_LABEL_COLOURS.items()
        )
        r, g, b = DRAWN_COLOUR
        rows += (
            f'<tr><td style="background-color: rgb({int(r * 255)},{int(g * 255)},{int(b * 255)})">&nbsp;&nbsp;&nbsp;&nbsp;</td>'
            "<td>&nbsp;the tumour you draw (Tumour section)</td></tr>"
        )
        legend = QtWidgets.QLabel(
            "<b>Tumour labels (BraTS)</b><table cellspacing=4>" + rows + "</table>"
        )
        legend.setWordWrap(True)
        legend.setAlignment(QtCore.Qt.AlignTop | QtCore.Qt.AlignLeft)
        legend.setMargin(12)
        return legend

    def set_case(self, case: CaseImages) -> None:
        self.case = case
        self.focus_mm = None
        for view in self.views.values():
            view.drawn.VisibilityOff()
        self.caseLabel.setText(f"{case.case_id}: {', '.join(case.images)}" + (" + labels" if case.labels is not None else ""))
        self.channelComboBox.blockSignals(True)
        self.channelComboBox.clear()
        self.channelComboBox.addItems(list(case.images))
        self.channelComboBox.blockSignals(False)
        preferred = "flair" if "flair" in case.images else next(iter(case.images), "")
        self.channelComboBox.setCurrentText(preferred)
        self._show_channel(preferred)

    def _show_channel(self, channel: str) -> None:
        if self.case is None or channel not in self.case.images:
            return
        focus = self.focus_mm or tuple(i * s for i, s in zip(self.case.focus(), self.case.spacing))
        for view in self.views.values():
            view.show_case(self.case, channel, focus)

    def show_drawn(self, mask: np.ndarray | None, centre_mm: tuple[float, float, float] | None = None) -> None:
        """Overlay the drawn tumour on every view; with ``centre_mm`` the views slice through it."""
        if self.case is None:
            return
        if centre_mm is not None:
            self.focus_mm = tuple(centre_mm)
            self._show_channel(self.channelComboBox.currentText())
        for view in self.views.values():
            view.show_drawn(mask, self.case.spacing)

    def render_all(self) -> None:
        """Render the three VTK windows now (before a screenshot)."""
        for view in self.views.values():
            view.GetRenderWindow().Render()
