"""Axial, coronal and sagittal VTK views of one channel with the BraTS label map overlaid."""

from __future__ import annotations

import numpy as np
import vtk
from PyQt5 import QtCore, QtWidgets
from vtk.util import numpy_support
from vtkmodules.qt.QVTKRenderWindowInteractor import QVTKRenderWindowInteractor

from ..conventions import BRATS_LABEL_COLOURS, BRATS_LABEL_NAMES, BRATS_LABELS
from .volumes import CaseImages

__all__ = ["SliceViews", "VIEWS"]

#: name -> (axis the view looks along, camera direction, view-up), radiological convention (patient right on the left).
VIEWS = {
    "Axial": (2, (0, 0, 1), (0, 1, 0)),
    "Coronal": (1, (0, -1, 0), (0, 0, 1)),
    "Sagittal": (0, (1, 0, 0), (0, 0, 1)),
}
LABEL_OPACITY = 0.45


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


class SliceView(QVTKRenderWindowInteractor):
    """One orthogonal view: a grey image slice and the label slice, through the same focal point."""

    def __init__(self, name: str, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
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
        self.text = vtk.vtkTextActor()
        self.text.GetTextProperty().SetFontSize(14)
        self.text.GetTextProperty().SetColor(1.0, 0.85, 0.3)
        self.text.SetPosition(6, 6)
        self.renderer.AddActor2D(self.text)
        self.text.SetInput(name)

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
        low, high = np.percentile(image[image > image.min()] if (image > image.min()).any() else image, (1, 99.5))
        self.grey.GetProperty().SetColorWindow(float(max(high - low, 1.0)))
        self.grey.GetProperty().SetColorLevel(float((high + low) / 2))
        self.grey.VisibilityOn()
        if case.labels is not None:
            self.label.GetMapper().SetInputData(image_data(case.labels, case.spacing))
            self.label.VisibilityOn()
        else:
            self.label.VisibilityOff()
        axis, direction, up = VIEWS[self.name]
        extent = [s * (n - 1) for s, n in zip(case.spacing, image.shape, strict=True)]
        # The slice goes through the focus; the view stays centred on the whole slice.
        focal = [e / 2 for e in extent]
        focal[axis] = focus_mm[axis]
        camera = self.renderer.GetActiveCamera()
        camera.ParallelProjectionOn()
        camera.SetFocalPoint(*focal)
        camera.SetPosition(*(f - 500.0 * d for f, d in zip(focal, direction, strict=True)))
        camera.SetViewUp(*up)
        vertical = next(i for i in range(3) if up[i])
        horizontal = next(i for i in range(3) if i not in (axis, vertical))
        self._field = (extent[horizontal], extent[vertical])
        self.fit()
        self.text.SetInput(f"{self.name}  {case.case_id} {channel}")
        self.GetRenderWindow().Render()


class SliceViews(QtWidgets.QWidget):
    """The three views side by side, plus a channel chooser."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.case: CaseImages | None = None
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
        self.views = {name: SliceView(name, self) for name in VIEWS}
        for (row, column), view in zip(((0, 0), (0, 1), (1, 0)), self.views.values(), strict=True):
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
        legend = QtWidgets.QLabel(
            "<b>Tumour labels (BraTS)</b><table cellspacing=4>" + rows + "</table>"
        )
        legend.setWordWrap(True)
        legend.setAlignment(QtCore.Qt.AlignTop | QtCore.Qt.AlignLeft)
        legend.setMargin(12)
        return legend

    def set_case(self, case: CaseImages) -> None:
        self.case = case
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
        focus = tuple(i * s for i, s in zip(self.case.focus(), self.case.spacing, strict=True))
        for view in self.views.values():
            view.show_case(self.case, channel, focus)

    def render_all(self) -> None:
        """Render the three VTK windows now (before a screenshot)."""
        for view in self.views.values():
            view.GetRenderWindow().Render()
