"""The Channels and Tumour sections' files: a volume (with its case's MR sequences) saved for the engine, a new
seg or CT channel loaded back, a drawn tumour written as a mask."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .building import CaseBuilder
from .cases import _segmentation_to_labelmap
from .nodes import (
    CASE_ATTRIBUTE,
    CHANNEL_ATTRIBUTE,
    MR_CHANNELS,
    SceneError,
    _slicer,
    _write,
    remove_node,
    segment_codes,
)
from .reading import read_files_arrays


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



def load_channel(path: Path, scene: Any = None, case_id: str | None = None) -> Any:
    """Load one channel file an add-channel or add-tumour job wrote: the node it became.

    ``<case>_seg.nii.gz`` becomes a Segmentation node with the BraTS segment names, codes and colours (as
    :func:`load_case` makes it); ``<case>_ct.nii.gz`` a scalar volume shown with the CT-Brain window/level; an MR
    file a plain scalar volume. Nothing is left in the scene if the file cannot be read.
    """
    builder = CaseBuilder(read_files_arrays([Path(path)], case_id), scene)
    builder.step()
    return builder.loaded.nodes[0]



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
