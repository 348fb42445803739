"""The fine-tune loss chart as MRML plot nodes in a private scene, grown by the new rows only.

The table, series, chart and view live in their own ``vtkMRMLScene``, not in the user's: following a fine-tune never
marks the user's scene modified, nothing of it is saved with a scene, and no temporary node shows up in a node
selector. ``qMRMLPlotWidget.setMRMLScene(plot.scene)`` and ``setMRMLPlotViewNode(plot.view)`` show it.
Needs Slicer's MRML (3D Slicer itself, or PyPI ``slicer-core``).
"""

from __future__ import annotations

import math
from typing import Any

from .i18n import _

__all__ = ["LossPlot"]


class LossPlot:
    """One chart, one series per loss name; :meth:`update` appends rows it has not plotted yet (O(new rows))."""

    def __init__(self, scene: Any = None) -> None:
        import slicer
        import vtk

        self._vtk = vtk
        self.scene = scene if scene is not None else slicer.vtkMRMLScene()
        self.table = self.scene.AddNewNodeByClass("vtkMRMLTableNode", "MedSynth fine-tune losses")
        self.chart = self.scene.AddNewNodeByClass("vtkMRMLPlotChartNode", "MedSynth loss chart")
        self.chart.SetTitle(_("Fine-tune losses"))
        self.chart.SetXAxisTitle(_("step"))
        self.chart.SetYAxisTitle(_("loss"))
        self.view = self.scene.AddNewNodeByClass("vtkMRMLPlotViewNode", "MedSynth loss view")
        self.view.SetPlotChartNodeID(self.chart.GetID())
        self._series: dict[str, Any] = {}
        self.rows = 0  # how many of the losses handed to update() are in the table
        self._reset()

    def _reset(self) -> None:
        table = self.table.GetTable()
        table.Initialize()
        steps = self._vtk.vtkDoubleArray()
        steps.SetName("step")
        table.AddColumn(steps)
        self.rows = 0
        self.chart.RemoveAllPlotSeriesNodeIDs()
        for node in self._series.values():
            self.scene.RemoveNode(node)
        self._series = {}

    def update(self, losses: list[tuple[int, dict[str, float]]]) -> bool:
        """Plot ``losses[self.rows:]`` (the list only grows while one job is followed; a shorter one starts over).

        Returns whether anything changed, so callers redraw only then.
        """
        if len(losses) < self.rows:
            self._reset()
        new = losses[self.rows:]
        if not new:
            return False
        table = self.table.GetTable()
        for _step, values in new:
            for name in values:
                if name not in self._series:
                    self._add_series(name)
        names = [table.GetColumnName(c) for c in range(table.GetNumberOfColumns())]
        for step, values in new:
            row = table.InsertNextBlankRow()
            table.SetValue(row, 0, float(step))
            for col in range(1, len(names)):
                table.SetValue(row, col, float(values.get(names[col], math.nan)))
        self.rows = len(losses)
        table.Modified()
        self.table.Modified()
        return True

    def _add_series(self, name: str) -> None:
        import slicer

        table = self.table.GetTable()
        column = self._vtk.vtkDoubleArray()
        column.SetName(name)
        column.SetNumberOfTuples(table.GetNumberOfRows())
        column.Fill(math.nan)
        table.AddColumn(column)
        series = self.scene.AddNewNodeByClass("vtkMRMLPlotSeriesNode", f"MedSynth loss {name}")
        series.SetAndObserveTableNodeID(self.table.GetID())
        series.SetXColumnName("step")
        series.SetYColumnName(name)
        series.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
        series.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleNone)
        self.chart.AddAndObservePlotSeriesNodeID(series.GetID())
        self._series[name] = series
