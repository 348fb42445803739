"""What the scene bridge shares: node attributes, errors, writing one node through Slicer's storage.

Needs Slicer's MRML (3D Slicer itself, or PyPI ``slicer-core``); imports nothing else beyond the standard library.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..conventions import ALL_CHANNELS, BRATS_LABEL_NAMES, BRATS_LABELS, LABEL_CHANNEL

#: Node attributes that remember where a node came from, so it can be written back under the right name.
CASE_ATTRIBUTE = "MedSynth.case"
CHANNEL_ATTRIBUTE = "MedSynth.channel"

#: Segment tag that holds the BraTS code of a segment (survives renaming the segment).
LABEL_TAG = "MedSynth.BraTSLabel"
_SUFFIXES = (".nii.gz", ".nii")

#: MR sequences an add-channel model reads (the channel a volume of unknown origin is saved as comes first).
MR_CHANNELS = ("t1", "t1ce", "t2", "flair")


class SceneError(ValueError):
    """A case folder or node selection that cannot be loaded or saved, said in one sentence."""



@dataclass
class LoadedCase:
    """The nodes :func:`load_case` created: one scalar volume per image channel and the label segmentation."""

    case_id: str
    volumes: dict[str, Any] = field(default_factory=dict)
    segmentation: Any = None
    mask: Any = None  # a prepared case's brain mask: a label map volume node, shown as an outline

    @property
    def nodes(self) -> list[Any]:
        """Every created node, volumes in channel order, then the segmentation and the mask."""
        return list(self.volumes.values()) + [n for n in (self.segmentation, self.mask) if n is not None]



def _slicer() -> Any:
    import slicer  # Slicer's Python, or PyPI slicer-core outside Slicer

    return slicer



def _temporary_node(scene: Any, class_name: str, name: str) -> Any:
    """A node that exists only while a file is read or written: hidden from node selectors before it is added."""
    node = scene.CreateNodeByClass(class_name)
    node.UnRegister(None)
    node.SetName(name)
    node.SetHideFromEditors(True)
    return scene.AddNode(node)



def remove_node(scene: Any, node: Any) -> None:
    """Remove a displayable/storable node together with its display and storage nodes."""
    if node is None or not scene.IsNodePresent(node):
        return
    helpers = []
    for getter, count in (("GetNthDisplayNode", "GetNumberOfDisplayNodes"), ("GetNthStorageNode", "GetNumberOfStorageNodes")):
        if hasattr(node, count):
            helpers += [getattr(node, getter)(i) for i in range(getattr(node, count)())]
    scene.RemoveNode(node)
    for helper in helpers:
        if helper is not None and scene.IsNodePresent(helper):
            scene.RemoveNode(helper)



def _vtk_reference(value: str) -> Any:
    import vtk

    return vtk.reference(value)



def segment_codes(segmentation_node: Any) -> dict[str, int]:
    """BraTS code of each segment (by segment id): its MedSynth tag, else its name (``ET``, ``Enhancing tumour``)."""
    seg = segmentation_node.GetSegmentation()
    lookup = {}
    for code, short in BRATS_LABELS.items():
        lookup[short.lower()] = code
        lookup[BRATS_LABEL_NAMES[code].lower()] = code
        lookup[f"{short} ({BRATS_LABEL_NAMES[code]})".lower()] = code
    codes: dict[str, int] = {}
    for i in range(seg.GetNumberOfSegments()):
        segment_id = seg.GetNthSegmentID(i)
        segment = seg.GetSegment(segment_id)
        tag = _vtk_reference("")
        if segment.GetTag(LABEL_TAG, tag) and str(tag).strip().isdigit():
            codes[segment_id] = int(str(tag))
        elif segment.GetName().strip().lower() in lookup:
            codes[segment_id] = lookup[segment.GetName().strip().lower()]
        else:
            raise SceneError(
                f"Segment '{segment.GetName()}' is not a BraTS label; name it NCR, ED or ET (or remove it) before saving."
            )
    if len(set(codes.values())) != len(codes):
        raise SceneError("Two segments carry the same BraTS label; merge them before saving.")
    return codes



def _node_channel(node: Any) -> str:
    channel = node.GetAttribute(CHANNEL_ATTRIBUTE)
    if not channel:
        if node.IsA("vtkMRMLSegmentationNode"):
            return LABEL_CHANNEL
        last = node.GetName().strip().split(" ")[-1].lower()
        channel = last if last in ALL_CHANNELS else None
    if channel not in ALL_CHANNELS:
        raise SceneError(
            f"Cannot tell which channel node '{node.GetName()}' is; name it '<case> <channel>' with a channel from "
            + ", ".join(ALL_CHANNELS)
            + "."
        )
    return channel



def _write(scene: Any, node: Any, target: Path) -> None:
    """Write one volume node through a fresh storage node, via a temporary name and a rename."""
    tmp = target.with_name(f".{target.name[: -len('.nii.gz')]}.partial.nii.gz")
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    try:
        storage.SetFileName(str(tmp))
        storage.SetUseCompression(True)
        storage.SetSingleFile(True)
        if not storage.WriteData(node) or not tmp.is_file():
            raise SceneError(f"Could not write {target}; check the disk has space and the folder is writable.")
        os.replace(tmp, target)
    finally:
        scene.RemoveNode(storage)
        tmp.unlink(missing_ok=True)



def _node_ids(scene: Any, class_name: str) -> set[str]:
    return {scene.GetNthNodeByClass(i, class_name).GetID() for i in range(scene.GetNumberOfNodesByClass(class_name))}
