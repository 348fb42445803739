"""What the slice views show after a result is loaded: shared by the MedSynth and MedSynthReaderStudy modules.

Needs Slicer's GUI (``slicer.util.setSliceViewerLayers``); outside it (slicer-core) the view calls do nothing.
"""

from __future__ import annotations

from typing import Any

from .nodes import LoadedCase

__all__ = ["show_case", "show_channel_nodes"]


def _overlay(segmentation: Any) -> None:
    display = segmentation.GetDisplayNode()
    display.SetVisibility(True)
    display.SetVisibility2DFill(True)
    display.SetOpacity2DFill(0.5)


def show_case(loaded: LoadedCase) -> None:
    """FLAIR (or the first channel) in the background of every slice view, the segmentation overlaid."""
    import slicer

    background = loaded.volumes.get("flair") or next(iter(loaded.volumes.values()), None)
    if background is not None:
        slicer.util.setSliceViewerLayers(background=background, foreground=None, label=loaded.mask, fit=True)
    if loaded.mask is not None:  # a prepared case's brain mask: its outline, as in the QC mosaic
        for view in (slicer.app.layoutManager().sliceViewNames() if slicer.app.layoutManager() else ()):
            slicer.app.layoutManager().sliceWidget(view).mrmlSliceNode().SetUseLabelOutline(True)
    if loaded.segmentation is not None:
        _overlay(loaded.segmentation)
        if background is not None:
            loaded.segmentation.SetReferenceImageGeometryParameterFromVolumeNode(background)


def show_channel_nodes(nodes: list[Any]) -> None:
    """A new seg channel overlaid, a new CT channel in the background."""
    import slicer

    for node in nodes:
        if node.IsA("vtkMRMLSegmentationNode"):
            _overlay(node)
        else:
            slicer.util.setSliceViewerLayers(background=node, fit=True)
