"""A case folder of NIfTI files in, volume nodes and a BraTS segmentation out, and back."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..conventions import ALL_CHANNELS, LABEL_CHANNEL
from .nodes import (
    _SUFFIXES,
    SceneError,
    _node_channel,
    _node_ids,
    _slicer,
    _temporary_node,
    _write,
    remove_node,
    segment_codes,
)


def case_channel_files(case_dir: Path) -> dict[str, Path]:
    """The NIfTI file of each channel in a BraTS-style case folder (``<case>/<case>_<channel>.nii.gz``)."""
    case_dir = Path(case_dir)
    if not case_dir.is_dir():
        raise SceneError(f"{case_dir} is not a folder; choose a case folder that holds <case>_<channel>.nii.gz files.")
    found: dict[str, Path] = {}
    for path in sorted(case_dir.iterdir()):
        for suffix in _SUFFIXES:
            if path.name.endswith(suffix):
                match = re.search(r"_([a-z0-9]+)$", path.name[: -len(suffix)].lower())
                if match and match.group(1) in ALL_CHANNELS:
                    channel = match.group(1)
                    if channel in found:
                        raise SceneError(f"{case_dir} holds two files for channel '{channel}'; keep one.")
                    found[channel] = path
                break
    if not found:
        raise SceneError(
            f"{case_dir} holds no <case>_<channel>.nii.gz files (channels " + ", ".join(ALL_CHANNELS) + ")."
        )
    return {c: found[c] for c in ALL_CHANNELS if c in found}



def save_nodes(nodes: Iterable[Any], case_dir: Path, scene: Any = None) -> dict[str, Path]:
    """Write volume and segmentation nodes as a BraTS-style case folder the engine reads.

    Each node lands in ``case_dir/<case>_<channel>.nii.gz`` (``<case>`` is the folder's name); the channel comes
    from the node's MedSynth attribute or its name's last word. A segmentation is written as a BraTS label map
    (0, 1, 2, 4) on its reference geometry. Existing files are never overwritten; each file is written under a
    temporary name and renamed into place.
    """
    nodes = list(nodes)
    if not nodes:
        raise SceneError("No node selected; choose at least one volume or segmentation to save.")
    scene = scene if scene is not None else nodes[0].GetScene()
    case_dir = Path(case_dir).absolute()
    by_channel: dict[str, Any] = {}
    for node in nodes:
        channel = _node_channel(node)
        if channel in by_channel:
            raise SceneError(f"Two selected nodes are channel '{channel}'; select one per channel.")
        by_channel[channel] = node
    parent = case_dir if case_dir.exists() else case_dir.parent
    if not parent.is_dir():
        raise SceneError(f"The folder {parent} does not exist; create it or choose another folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise SceneError(f"Cannot write into {parent}; choose a folder you may write to.")
    targets = {c: case_dir / f"{case_dir.name}_{c}.nii.gz" for c in ALL_CHANNELS if c in by_channel}
    existing = [str(p) for p in targets.values() if p.exists()]
    if existing:
        raise SceneError(f"{existing[0]} already exists; choose a new case folder (nothing is overwritten).")
    case_dir.mkdir(exist_ok=True)
    written: dict[str, Path] = {}
    for channel, target in targets.items():
        node = by_channel[channel]
        if channel == LABEL_CHANNEL and node.IsA("vtkMRMLSegmentationNode"):
            labelmap = _segmentation_to_labelmap(scene, node)
            try:
                _write(scene, labelmap, target)
            finally:
                remove_node(scene, labelmap)
        else:
            if node.GetImageData() is None:
                raise SceneError(f"Node '{node.GetName()}' holds no image; load or generate it first.")
            _write(scene, node, target)
        written[channel] = target
    return written



def _segmentation_to_labelmap(scene: Any, segmentation_node: Any, codes: dict[str, int] | None = None,
                              reference: Any = None) -> Any:
    """A temporary label map node holding the BraTS codes of the segments, on the segmentation's reference geometry.

    Each segment is exported on its own and painted with its code, so the result does not depend on how Slicer
    packed the segments into shared label map layers (drawing moves segments between layers). ``codes`` (segment
    id -> value) defaults to the segments' BraTS codes; ``reference``, a volume node, sets the grid instead.
    """
    import numpy as np

    slicer = _slicer()
    codes = segment_codes(segmentation_node) if codes is None else codes
    logic = slicer.vtkSlicerSegmentationsModuleLogic
    seg = segmentation_node.GetSegmentation()
    reference_extent = slicer.vtkSegmentation.EXTENT_REFERENCE_GEOMETRY
    colour_tables = _node_ids(scene, "vtkMRMLColorTableNode")
    labelmap = _temporary_node(scene, "vtkMRMLLabelMapVolumeNode", "MedSynth export (temporary)")
    try:
        if not codes:
            raise SceneError(f"Segmentation '{segmentation_node.GetName()}' has no segment; add NCR, ED or ET first.")
        # All segments at once give the reference geometry (values there are Slicer's, not BraTS codes).
        if not logic.ExportSegmentsToLabelmapNode(segmentation_node, list(codes), labelmap, reference, reference_extent):
            raise SceneError(f"Segmentation '{segmentation_node.GetName()}' could not be turned into a label map.")
        combined = np.zeros(slicer.util.arrayFromVolume(labelmap).shape, np.uint8)
        for segment_id, code in sorted(codes.items(), key=lambda item: item[1]):
            ok = logic.ExportSegmentsToLabelmapNode(segmentation_node, [segment_id], labelmap, reference, reference_extent)
            scalars = labelmap.GetImageData().GetPointData().GetScalars() if labelmap.GetImageData() else None
            if not ok or scalars is None:
                continue  # an empty segment
            mask = slicer.util.arrayFromVolume(labelmap) != 0
            if mask.shape != combined.shape:
                raise SceneError(f"Segment '{seg.GetSegment(segment_id).GetName()}' lies outside the reference geometry.")
            combined[mask] = code
        slicer.util.updateVolumeFromArray(labelmap, combined)
        return labelmap
    except BaseException:
        remove_node(scene, labelmap)
        raise
    finally:  # Slicer's export adds a colour table per call; it is not ours to keep
        for node_id in _node_ids(scene, "vtkMRMLColorTableNode") - colour_tables:
            scene.RemoveNode(scene.GetNodeByID(node_id))
