"""A case read by :mod:`MedSynthLib.scene.reading` made into MRML nodes on the GUI thread, one small step at a time.

Each :meth:`CaseBuilder.step` adds one node and hands it the voxels already in memory: a scalar volume gets its
``vtkImageData``, IJK-to-RAS matrix and Slicer's automatic window/level (computed on the worker, so the display node
does not scan the volume here); the segmentation gets its reference geometry and one segment per BraTS label from
that label's bounding box (no label map import). A step costs a few milliseconds at full size; the panel runs one
per timer tick, :func:`load_case` all at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..conventions import BRATS_LABEL_COLOURS, BRATS_LABEL_NAMES, BRATS_LABELS, LABEL_CHANNEL, MASK_CHANNEL
from .nodes import CASE_ATTRIBUTE, CHANNEL_ATTRIBUTE, LABEL_TAG, LoadedCase, SceneError, _slicer, remove_node
from .reading import CaseArrays, ChannelArrays, read_case_arrays
from .terminology import set_segment_terminology

__all__ = ["CaseBuilder", "load_case", "add_volume", "add_segmentation", "CT_PRESETS", "apply_ct_preset"]

#: Slicer's CT window/level presets (Modules/Loadable/Volumes/Resources/VolumeDisplayPresets.json): name -> (W, L).
#: A CT channel opens with CT-Brain; the others are offered as the display node's presets.
CT_PRESETS: dict[str, tuple[float, float]] = {"CT-Brain": (100.0, 50.0), "CT-Bone": (1000.0, 400.0), "CT-Abdomen": (350.0, 40.0)}


class CaseBuilder:
    """Makes the nodes of one read case in ``scene``, one channel per :meth:`step`; undone by :meth:`abort`."""

    def __init__(self, arrays: CaseArrays, scene: Any = None) -> None:
        self.scene = scene if scene is not None else _slicer().mrmlScene
        self.loaded = LoadedCase(arrays.case_id)
        self._todo = list(arrays.channels.values())

    @property
    def done(self) -> bool:
        return not self._todo

    def step(self) -> LoadedCase | None:
        """Add the next channel's node; returns the finished case after the last one (else None). On failure every
        node this builder made is removed and the error raised."""
        if not self._todo:
            return self.loaded
        read = self._todo.pop(0)
        try:
            if read.channel == LABEL_CHANNEL:
                self.loaded.segmentation = add_segmentation(self.scene, read, self.loaded.case_id)
            elif read.channel == MASK_CHANNEL:
                self.loaded.mask = add_volume(self.scene, read, self.loaded.case_id, "vtkMRMLLabelMapVolumeNode")
            else:
                self.loaded.volumes[read.channel] = add_volume(self.scene, read, self.loaded.case_id)
        except BaseException:
            self.abort()
            raise
        return None if self._todo else self.loaded

    def abort(self) -> None:
        """Remove what was made so far (a failed step, a closed scene)."""
        self._todo = []
        for node in reversed(self.loaded.nodes):
            remove_node(self.scene, node)
        self.loaded = LoadedCase(self.loaded.case_id)


def load_case(case_dir: Path, scene: Any = None, channels: Iterable[str] | None = None) -> LoadedCase:
    """Load a BraTS-style case folder into ``scene`` (default ``slicer.mrmlScene``) now: for scripts and tests.

    Every image channel becomes a scalar volume node named ``"<case> <channel>"``; the ``seg`` channel becomes a
    Segmentation node ``"<case> segmentation"`` with one segment per BraTS label (1 NCR, 2 ED, 4 ET; empty
    segments for labels the case lacks, so a tumour can be drawn into them). Nothing is left in the scene if a
    file cannot be read. The panel does the same in steps (:func:`read_case_arrays` on its worker thread, then
    :class:`CaseBuilder`).
    """
    builder = CaseBuilder(read_case_arrays(Path(case_dir), channels), scene)
    while not builder.done:
        builder.step()
    return builder.loaded


def apply_ct_preset(volume_node: Any, preset: str = "CT-Brain") -> None:
    """Show a CT volume in Hounsfield units with Slicer's CT window/level preset (grey, fixed, not automatic).

    The same numbers as Slicer's Volumes module presets, set on the display node directly (the module's preset
    file is not part of every Slicer build); the other CT presets are added to the node's preset list.
    """
    if preset not in CT_PRESETS:
        raise SceneError(f"Unknown CT preset '{preset}'; choose from " + ", ".join(CT_PRESETS) + ".")
    if volume_node.GetDisplayNode() is None:
        volume_node.CreateDefaultDisplayNodes()
    display = volume_node.GetDisplayNode()
    display.SetAndObserveColorNodeID("vtkMRMLColorTableNodeGrey")
    display.AutoWindowLevelOff()
    display.ResetWindowLevelPresets()
    for window, level in CT_PRESETS.values():
        display.AddWindowLevelPreset(window, level)
    window, level = CT_PRESETS[preset]
    display.SetWindowLevel(window, level)


def _matrix(rows: list[list[float]]) -> Any:
    import vtk

    matrix = vtk.vtkMatrix4x4()
    for i in range(4):
        for j in range(4):
            matrix.SetElement(i, j, rows[i][j])
    return matrix


def _tag(node: Any, case_id: str, channel: str) -> None:
    node.SetAttribute(CASE_ATTRIBUTE, case_id)
    node.SetAttribute(CHANNEL_ATTRIBUTE, channel)


def add_volume(scene: Any, read: ChannelArrays, case_id: str, node_class: str = "vtkMRMLScalarVolumeNode") -> Any:
    """A scalar volume node ``"<case> <channel>"`` holding ``read``'s voxels, shown with Slicer's automatic
    window/level as computed when it was read (a CT with the CT-Brain preset); a label map volume node (a prepared
    case's brain mask) gets Slicer's label colours instead."""
    node = scene.AddNewNodeByClass(node_class, f"{case_id} {read.channel}")
    try:
        node.SetIJKToRASMatrix(_matrix(read.ijk_to_ras))
        label_map = node.IsA("vtkMRMLLabelMapVolumeNode")
        display = scene.AddNewNodeByClass("vtkMRMLLabelMapVolumeDisplayNode" if label_map else "vtkMRMLScalarVolumeDisplayNode")
        display.SetDefaultColorMap()
        if not label_map:
            display.SetAutoWindowLevel(False)  # the worker computed it already; scanning 6 M voxels here is 50 ms
            display.SetWindowLevelMinMax(*read.window)
        node.SetAndObserveDisplayNodeID(display.GetID())
        node.SetAndObserveImageData(read.image)
        _tag(node, case_id, read.channel)
        if read.channel == "ct":
            apply_ct_preset(node)
    except BaseException:
        remove_node(scene, node)
        raise
    return node


def add_segmentation(scene: Any, read: ChannelArrays, case_id: str) -> Any:
    """A Segmentation node ``"<case> segmentation"`` on ``read``'s grid with one segment per BraTS label, named,
    coloured, tagged with its code and standard terminology (an empty segment for a label the case lacks)."""
    from vtkmodules.util.numpy_support import numpy_to_vtk

    slicer = _slicer()
    node = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{case_id} segmentation")
    try:
        node.CreateDefaultDisplayNodes()
        converter = slicer.vtkSegmentationConverter
        geometry = slicer.vtkOrientedImageData()
        i, j, k = read.dimensions
        geometry.SetExtent(0, i - 1, 0, j - 1, 0, k - 1)
        geometry.SetImageToWorldMatrix(_matrix(read.ijk_to_ras))
        segmentation = node.GetSegmentation()
        segmentation.SetConversionParameter(converter.GetReferenceImageGeometryParameterName(),
                                            converter.SerializeImageGeometry(geometry))
        for code, crop in read.labels.items():
            labelmap = slicer.vtkOrientedImageData()
            if crop is not None:
                extent, voxels = crop
                labelmap.SetExtent(*extent)
                labelmap.GetPointData().SetScalars(numpy_to_vtk(voxels.ravel(), deep=True))
                labelmap.SetImageToWorldMatrix(_matrix(read.ijk_to_ras))
            segment = slicer.vtkSegment()
            segment.SetName(f"{BRATS_LABELS[code]} ({BRATS_LABEL_NAMES[code]})")
            segment.SetColor(*BRATS_LABEL_COLOURS[code])
            segment.SetLabelValue(code)
            segment.SetTag(LABEL_TAG, str(code))
            set_segment_terminology(segment, code)
            segment.AddRepresentation(converter.GetBinaryLabelmapRepresentationName(), labelmap)
            if not segmentation.AddSegment(segment, segmentation.GenerateUniqueSegmentID(BRATS_LABELS[code])):
                raise SceneError(f"Could not add the {BRATS_LABELS[code]} segment of {read.path}.")
        _tag(node, case_id, LABEL_CHANNEL)
    except BaseException:
        remove_node(scene, node)
        raise
    return node
