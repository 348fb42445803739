"""A case folder read into memory off the GUI thread: what the scene needs, with no MRML touched.

Reading a full-size case (176x208x176, five channels) takes about a second, too long for Slicer's GUI thread. Here
each NIfTI file is read with SimpleITK (Slicer ships it; the same ITK NIfTI reader Slicer's storage node uses, so
geometry is identical), turned into a ``vtkImageData`` (a deep copy, handed to the GUI thread and never touched here
again) with the window/level Slicer's display node would compute (the same ``vtkImageHistogramStatistics``, 0.1 and
99.9 percentiles), and the label channel is checked and cut into one small array per BraTS label (its bounding box).
:mod:`MedSynthLib.scene.building` then makes the nodes from this in steps of a few milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..conventions import ALL_CHANNELS, BRATS_LABELS, LABEL_CHANNEL
from .cases import case_channel_files
from .nodes import _SUFFIXES, SceneError

__all__ = ["ChannelArrays", "CaseArrays", "read_case_arrays", "read_channel_arrays", "read_files_arrays"]

_LPS_TO_RAS = (-1.0, -1.0, 1.0)


@dataclass
class ChannelArrays:
    """One channel file in memory: the image (or, for the label channel, its geometry and per-label crops)."""

    channel: str
    path: Path
    ijk_to_ras: list[list[float]]  # 4x4, as vtkMRMLVolumeNode.SetIJKToRASMatrix takes it
    dimensions: tuple[int, int, int]  # i, j, k
    image: Any = None  # vtkImageData with the voxels (image channels)
    window: tuple[float, float] | None = None  # display min, max (Slicer's automatic window/level)
    #: label channel: BraTS code -> (extent (i0, i1, j0, j1, k0, k1), uint8 array k, j, i holding the code), or None
    #: for a label the case lacks
    labels: dict[int, tuple[tuple[int, ...], Any] | None] = field(default_factory=dict)


@dataclass
class CaseArrays:
    """Every channel of one case folder, read (:func:`read_case_arrays`), in channel order."""

    case_id: str
    channels: dict[str, ChannelArrays] = field(default_factory=dict)


def read_case_arrays(case_dir: Path, channels: Iterable[str] | None = None) -> CaseArrays:
    """Read a BraTS-style case folder (all channels, or ``channels``) for :class:`~MedSynthLib.scene.building.CaseBuilder`.

    Safe on a worker thread: SimpleITK, numpy and VTK data objects only. Raises :class:`SceneError` naming the file
    that cannot be read or holds labels other than BraTS's.
    """
    case_dir = Path(case_dir)
    files = case_channel_files(case_dir)
    if channels is not None:
        wanted = tuple(channels)
        missing = [c for c in wanted if c not in files]
        if missing:
            raise SceneError(f"{case_dir} has no file for channel(s) " + ", ".join(missing) + ".")
        files = {c: p for c, p in files.items() if c in wanted}
    return CaseArrays(case_dir.name, {c: read_channel_arrays(p, c) for c, p in files.items()})


def read_files_arrays(paths: Iterable[Path], case_id: str | None = None) -> CaseArrays:
    """Channel files of one case (what an add-channel job wrote: ``<case>_<channel>.nii.gz``), read like a case."""
    read: dict[str, ChannelArrays] = {}
    for path in map(Path, paths):
        name = next((path.name[: -len(s)] for s in _SUFFIXES if path.name.endswith(s)), None)
        match = re.search(r"^(.*)_([a-z0-9]+)$", name or "")
        if not match or match.group(2) not in ALL_CHANNELS:
            raise SceneError(f"{path.name} is not a <case>_<channel>.nii.gz file (channels " + ", ".join(ALL_CHANNELS) + ").")
        case_id = case_id or match.group(1)
        read[match.group(2)] = read_channel_arrays(path, match.group(2))
    return CaseArrays(case_id or "", read)


def read_channel_arrays(path: Path, channel: str) -> ChannelArrays:
    """One channel file read as :class:`ChannelArrays` (see :func:`read_case_arrays`)."""
    import numpy as np
    import SimpleITK as sitk

    path = Path(path)
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError:
        raise SceneError(f"{path} could not be read as a NIfTI volume (corrupt, truncated or not an image).") from None
    if image.GetDimension() == 4 and image.GetSize()[3] == 1:
        image = image[:, :, :, 0]
    if image.GetDimension() != 3 or image.GetNumberOfComponentsPerPixel() != 1:
        raise SceneError(f"{path} is not a 3D scalar volume; MedSynth reads one 3D image per channel file.")
    direction = np.array(image.GetDirection(), float).reshape(3, 3)
    matrix = np.eye(4)
    flip = np.diag(_LPS_TO_RAS)
    matrix[:3, :3] = flip @ direction @ np.diag(image.GetSpacing())
    matrix[:3, 3] = flip @ np.array(image.GetOrigin(), float)
    voxels = sitk.GetArrayFromImage(image)  # k, j, i
    read = ChannelArrays(channel, path, matrix.tolist(), tuple(int(n) for n in image.GetSize()))
    if channel == LABEL_CHANNEL:
        read.labels = _label_crops(voxels, path)
    else:
        read.image = _vtk_image(voxels)
        read.window = _auto_window(read.image)
    return read


def _label_crops(voxels: Any, path: Path) -> dict[int, tuple[tuple[int, ...], Any] | None]:
    import numpy as np

    values = set(int(v) for v in np.unique(voxels))
    unknown = sorted(values - {0} - set(BRATS_LABELS))
    if unknown:
        raise SceneError(
            f"{path} holds label value(s) {', '.join(map(str, unknown))}; BraTS labels are 1 (NCR), 2 (ED), 4 (ET)."
        )
    crops: dict[int, tuple[tuple[int, ...], Any] | None] = {}
    for code in BRATS_LABELS:
        mask = voxels == code
        if not mask.any():
            crops[code] = None
            continue
        ks, js, is_ = (np.flatnonzero(mask.any(axis=axes)) for axes in ((1, 2), (0, 2), (0, 1)))
        k0, k1, j0, j1, i0, i1 = ks[0], ks[-1], js[0], js[-1], is_[0], is_[-1]
        crop = mask[k0:k1 + 1, j0:j1 + 1, i0:i1 + 1].astype(np.uint8) * np.uint8(code)
        crops[code] = (tuple(int(v) for v in (i0, i1, j0, j1, k0, k1)), np.ascontiguousarray(crop))
    return crops


def _vtk_image(voxels: Any) -> Any:
    from vtkmodules.util.numpy_support import numpy_to_vtk
    from vtkmodules.vtkCommonDataModel import vtkImageData

    image = vtkImageData()
    image.SetDimensions(voxels.shape[2], voxels.shape[1], voxels.shape[0])
    image.GetPointData().SetScalars(numpy_to_vtk(voxels.ravel(), deep=True))
    return image


def _auto_window(image: Any) -> tuple[float, float]:
    """Slicer's automatic window/level (vtkMRMLScalarVolumeDisplayNode::CalculateScalarAutoLevels), computed here."""
    from vtkmodules.vtkImagingStatistics import vtkImageHistogramStatistics

    statistics = vtkImageHistogramStatistics()
    statistics.SetAutoRangePercentiles(0.1, 99.9)
    statistics.SetAutoRangeExpansionFactors(0.0, 0.0)
    statistics.SetInputData(image)
    statistics.Update()
    low, high = statistics.GetAutoRange()
    return float(low), float(high)
