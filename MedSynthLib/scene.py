"""The bridge between NIfTI files and an MRML scene: a case folder in, volume and segmentation nodes out, and back.

Files, not pixels, cross the boundary between the engine and Slicer: the engine writes NIfTI (RAS affines), and
this module reads them through Slicer's own storage nodes (ITK; LPS inside Slicer's file layer, RAS in the
nodes), so geometry is handled exactly as File > Add Data would handle it. The label channel becomes a
Segmentation node whose segments carry the BraTS names, codes and colours of :mod:`MedSynthLib.conventions`.

Needs Slicer's MRML (3D Slicer itself, or PyPI ``slicer-core``); imports nothing else beyond the standard library.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .conventions import ALL_CHANNELS, BRATS_LABEL_COLOURS, BRATS_LABEL_NAMES, BRATS_LABELS, LABEL_CHANNEL

__all__ = [
    "SceneError", "LoadedCase", "case_channel_files", "load_case", "remove_node", "save_nodes", "segment_codes",
    "CT_PRESETS", "apply_ct_preset", "load_channel", "save_channel_inputs", "write_tumour_mask",
]

#: Node attributes that remember where a node came from, so it can be written back under the right name.
CASE_ATTRIBUTE = "MedSynth.case"
CHANNEL_ATTRIBUTE = "MedSynth.channel"
#: Segment tag that holds the BraTS code of a segment (survives renaming the segment).
LABEL_TAG = "MedSynth.BraTSLabel"
_SUFFIXES = (".nii.gz", ".nii")
#: MR sequences an add-channel model reads (the channel a volume of unknown origin is saved as comes first).
MR_CHANNELS = ("t1", "t1ce", "t2", "flair")
#: Slicer's CT window/level presets (Modules/Loadable/Volumes/Resources/VolumeDisplayPresets.json): name -> (W, L).
#: A CT channel opens with CT-Brain; the others are offered as the display node's presets.
CT_PRESETS: dict[str, tuple[float, float]] = {"CT-Brain": (100.0, 50.0), "CT-Bone": (1000.0, 400.0), "CT-Abdomen": (350.0, 40.0)}


class SceneError(ValueError):
    """A case folder or node selection that cannot be loaded or saved, said in one sentence."""


@dataclass
class LoadedCase:
    """The nodes :func:`load_case` created: one scalar volume per image channel and the label segmentation."""

    case_id: str
    volumes: dict[str, Any] = field(default_factory=dict)
    segmentation: Any = None

    @property
    def nodes(self) -> list[Any]:
        """Every created node, volumes in channel order, then the segmentation."""
        return list(self.volumes.values()) + ([self.segmentation] if self.segmentation is not None else [])


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


def _read_into(scene: Any, node: Any, path: Path) -> None:
    storage = scene.AddNewNodeByClass("vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    storage.SetSingleFile(True)
    ok = storage.ReadData(node)
    if not ok:
        scene.RemoveNode(storage)
        raise SceneError(f"{path} could not be read as a NIfTI volume (corrupt, truncated or not an image).")
    node.SetAndObserveStorageNodeID(storage.GetID())


def load_case(case_dir: Path, scene: Any = None, channels: Iterable[str] | None = None) -> LoadedCase:
    """Load a BraTS-style case folder into ``scene`` (default ``slicer.mrmlScene``).

    Every image channel becomes a scalar volume node named ``"<case> <channel>"``; the ``seg`` channel becomes a
    Segmentation node ``"<case> segmentation"`` with one segment per BraTS label (1 NCR, 2 ED, 4 ET; empty
    segments for labels the case lacks, so a tumour can be drawn into them). Nothing is left in the scene if a
    file cannot be read.
    """
    slicer = _slicer()
    scene = scene if scene is not None else slicer.mrmlScene
    case_dir = Path(case_dir)
    files = case_channel_files(case_dir)
    if channels is not None:
        wanted = tuple(channels)
        missing = [c for c in wanted if c not in files]
        if missing:
            raise SceneError(f"{case_dir} has no file for channel(s) " + ", ".join(missing) + ".")
        files = {c: p for c, p in files.items() if c in wanted}
    case_id = case_dir.name
    loaded = LoadedCase(case_id)
    created: list[Any] = []
    try:
        for channel, path in files.items():
            if channel == LABEL_CHANNEL:
                loaded.segmentation = _load_segmentation(scene, path, case_id, created)
                continue
            node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", f"{case_id} {channel}")
            created.append(node)
            _read_into(scene, node, path)
            node.SetAttribute(CASE_ATTRIBUTE, case_id)
            node.SetAttribute(CHANNEL_ATTRIBUTE, channel)
            node.CreateDefaultDisplayNodes()
            loaded.volumes[channel] = node
    except BaseException:
        for node in reversed(created):
            remove_node(scene, node)
        raise
    return loaded


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


def _load_segmentation(scene: Any, path: Path, case_id: str, created: list[Any]) -> Any:
    slicer = _slicer()
    labelmap = _temporary_node(scene, "vtkMRMLLabelMapVolumeNode", f"{case_id} seg (temporary)")
    try:
        _read_into(scene, labelmap, path)
        values = set(int(v) for v in _unique(slicer.util.arrayFromVolume(labelmap)))
        unknown = sorted(values - {0} - set(BRATS_LABELS))
        if unknown:
            raise SceneError(
                f"{path} holds label value(s) {', '.join(map(str, unknown))}; BraTS labels are 1 (NCR), 2 (ED), 4 (ET)."
            )
        segmentation = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", f"{case_id} segmentation")
        created.append(segmentation)
        segmentation.CreateDefaultDisplayNodes()
        segmentation.SetReferenceImageGeometryParameterFromVolumeNode(labelmap)
        if values - {0}:
            ok = slicer.vtkSlicerSegmentationsModuleLogic.ImportLabelmapToSegmentationNode(labelmap, segmentation)
            if not ok:
                raise SceneError(f"{path} could not be turned into a segmentation.")
        seg = segmentation.GetSegmentation()
        by_code = {}
        for i in range(seg.GetNumberOfSegments()):
            segment_id = seg.GetNthSegmentID(i)
            by_code[int(seg.GetSegment(segment_id).GetLabelValue())] = segment_id
        for code in BRATS_LABELS:
            if code not in by_code:  # an empty segment to draw into
                segment = slicer.vtkSegment()
                segment.AddRepresentation(seg.GetSourceRepresentationName(), slicer.vtkOrientedImageData())
                segment.SetName(BRATS_LABELS[code])
                segment_id = seg.GenerateUniqueSegmentID(BRATS_LABELS[code])
                if not seg.AddSegment(segment, segment_id):
                    raise SceneError(f"Could not add an empty {BRATS_LABELS[code]} segment for {path}.")
                by_code[code] = segment_id
        for code, segment_id in by_code.items():
            segment = seg.GetSegment(segment_id)
            segment.SetName(f"{BRATS_LABELS[code]} ({BRATS_LABEL_NAMES[code]})")
            segment.SetColor(*BRATS_LABEL_COLOURS[code])
            segment.SetTag(LABEL_TAG, str(code))
        segmentation.SetAttribute(CASE_ATTRIBUTE, case_id)
        segmentation.SetAttribute(CHANNEL_ATTRIBUTE, LABEL_CHANNEL)
        return segmentation
    finally:
        remove_node(scene, labelmap)


def _unique(array: Any) -> Any:
    import numpy as np

    return np.unique(array)


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


def _node_ids(scene: Any, class_name: str) -> set[str]:
    return {scene.GetNthNodeByClass(i, class_name).GetID() for i in range(scene.GetNumberOfNodesByClass(class_name))}


# -- channels and tumours: what the panel's Channels and Tumour sections hand to the engine and load back -------


def _case_siblings(node: Any, scene: Any) -> dict[str, Any]:
    """MR volumes of the case ``node`` belongs to (MedSynth case attribute), ``node`` itself for its own channel."""
    case_id = node.GetAttribute(CASE_ATTRIBUTE)
    channel = node.GetAttribute(CHANNEL_ATTRIBUTE)
    if not case_id or channel not in MR_CHANNELS:
        return {}
    found = {channel: node}
    for i in range(scene.GetNumberOfNodesByClass("vtkMRMLScalarVolumeNode")):
        other = scene.GetNthNodeByClass(i, "vtkMRMLScalarVolumeNode")
        other_channel = other.GetAttribute(CHANNEL_ATTRIBUTE)
        if (other.GetAttribute(CASE_ATTRIBUTE) == case_id and other_channel in MR_CHANNELS and other_channel not in found
                and not other.IsA("vtkMRMLLabelMapVolumeNode") and other.GetImageData() is not None):
            found[other_channel] = other
    return {c: found[c] for c in MR_CHANNELS if c in found}


def save_channel_inputs(node: Any, case_dir: Path, scene: Any = None) -> dict[str, Path]:
    """Write what an add-channel job reads for the volume ``node`` as a BraTS-style case folder ``case_dir``.

    A volume of a case MedSynth loaded brings that case's other MR sequences along (the segmentation model uses
    all it has); any other scalar volume is saved alone, as the channel its name ends with, else as ``t1`` (the
    CT model works from T1, the most common clinical MR). Returns channel -> written file.
    """
    if node is None or node.GetImageData() is None:
        raise SceneError("No volume with an image is selected; load or generate a volume first.")
    scene = scene if scene is not None else node.GetScene()
    volumes = _case_siblings(node, scene)
    if not volumes:
        last = node.GetName().strip().split(" ")[-1].lower()
        volumes = {last if last in MR_CHANNELS else MR_CHANNELS[0]: node}
    case_dir = Path(case_dir).absolute()
    if case_dir.exists():
        raise SceneError(f"{case_dir} already exists; choose a new case folder (nothing is overwritten).")
    case_dir.mkdir(parents=True)
    written = {}
    for channel, volume in volumes.items():
        target = case_dir / f"{case_dir.name}_{channel}.nii.gz"
        _write(scene, volume, target)
        written[channel] = target
    return written


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


def load_channel(path: Path, scene: Any = None, case_id: str | None = None) -> Any:
    """Load one channel file an add-channel or add-tumour job wrote: the node it became.

    ``<case>_seg.nii.gz`` becomes a Segmentation node with the BraTS segment names, codes and colours (as
    :func:`load_case` makes it); ``<case>_ct.nii.gz`` a scalar volume shown with the CT-Brain window/level; an MR
    file a plain scalar volume. Nothing is left in the scene if the file cannot be read.
    """
    slicer = _slicer()
    scene = scene if scene is not None else slicer.mrmlScene
    path = Path(path)
    name = next((path.name[: -len(s)] for s in _SUFFIXES if path.name.endswith(s)), None)
    match = re.search(r"^(.*)_([a-z0-9]+)$", name or "")
    if not match or match.group(2) not in ALL_CHANNELS:
        raise SceneError(f"{path.name} is not a <case>_<channel>.nii.gz file (channels " + ", ".join(ALL_CHANNELS) + ").")
    case_id = case_id or match.group(1)
    channel = match.group(2)
    created: list[Any] = []
    try:
        if channel == LABEL_CHANNEL:
            return _load_segmentation(scene, path, case_id, created)
        node = scene.AddNewNodeByClass("vtkMRMLScalarVolumeNode", f"{case_id} {channel}")
        created.append(node)
        _read_into(scene, node, path)
        node.SetAttribute(CASE_ATTRIBUTE, case_id)
        node.SetAttribute(CHANNEL_ATTRIBUTE, channel)
        node.CreateDefaultDisplayNodes()
        if channel == "ct":
            apply_ct_preset(node)
        return node
    except BaseException:
        for node in reversed(created):
            remove_node(scene, node)
        raise


def write_tumour_mask(segmentation_node: Any, path: Path, segment_id: str | None = None, reference: Any = None,
                      scene: Any = None) -> bool:
    """Write the tumour drawn in ``segmentation_node`` as a NIfTI mask at ``path``; returns whether it is an outline.

    With ``segment_id``: that one drawn segment, as a binary region (the engine grows core, rim and oedema from
    it: ``outline``). Without: every segment as its BraTS code (NCR, ED, ET named or tagged), used as it is.
    ``reference`` (a volume node, e.g. the case to add the tumour to) sets the grid; else the segmentation's own.
    """
    scene = scene if scene is not None else segmentation_node.GetScene()
    seg = segmentation_node.GetSegmentation()
    if segment_id is not None:
        segment = seg.GetSegment(segment_id)
        if segment is None:
            raise SceneError(f"Segmentation '{segmentation_node.GetName()}' has no segment '{segment_id}'; pick a drawn segment.")
        codes = {segment_id: 1}
        what = f"segment '{segment.GetName()}'"
    else:
        codes = segment_codes(segmentation_node)
        what = f"segmentation '{segmentation_node.GetName()}'"
    labelmap = _segmentation_to_labelmap(scene, segmentation_node, codes, reference)
    try:
        if not _slicer().util.arrayFromVolume(labelmap).any():
            raise SceneError(f"The {what} is empty; draw the tumour with the Segment Editor first.")
        path = Path(path).absolute()
        path.parent.mkdir(parents=True, exist_ok=True)
        _write(scene, labelmap, path)
    finally:
        remove_node(scene, labelmap)
    return segment_id is not None
