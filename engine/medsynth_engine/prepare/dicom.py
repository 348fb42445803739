"""DICOM discovery and series reading: a folder of any nesting in, checked 3D series (SimpleITK images) out.

Files are read with pydicom (headers first, pixels only for series that pass every check). A series that cannot
become one trustworthy 3D volume is listed with the reason and skipped: localizers, derived or secondary images,
2D or multi-frame series, mixed orientations, missing slices or uneven spacing, unreadable pixel data. Every
header value stays in memory: nothing read here is written anywhere except the console and the hospital's key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

__all__ = ["DicomSeries", "Skipped", "scan_dicom", "series_problem", "read_series", "HEADER_FIELDS"]

#: Header fields kept per series for classification (values of its first image).
HEADER_FIELDS = (
    "Modality", "SeriesDescription", "ProtocolName", "SequenceName", "ScanningSequence", "SequenceVariant",
    "ScanOptions", "MRAcquisitionType", "InversionTime", "RepetitionTime", "EchoTime", "FlipAngle",
    "ContrastBolusAgent", "ImageType", "SeriesNumber",
)
_ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
_ONE_POSITION = "several images at one slice position"
#: A 3D volume needs at least this many slices; fewer is a 2D acquisition or a partial series.
MIN_SLICES = 10


@dataclass
class Skipped:
    """Something in the input that was not used, and why (one sentence naming the file or series).

    ``bad`` marks broken input (unreadable, incomplete or inconsistent: it stops a run without ``--skip-bad``), as
    opposed to what prepare passes over by design (localizers, derived series, unclassified or duplicate sequences).
    """

    what: str
    reason: str
    study: str = ""
    bad: bool = False


@dataclass
class DicomSeries:
    """One series: its study, its files and the header values that classify it (in memory only)."""

    study_uid: str
    series_uid: str
    headers: dict
    files: list[Path] = field(default_factory=list)
    _datasets: list = field(default_factory=list, repr=False)

    @property
    def name(self) -> str:
        """How messages name it: series number, description and folder (console and key only, never the output)."""
        number = self.headers.get("SeriesNumber", "?")
        description = self.headers.get("SeriesDescription") or self.headers.get("ProtocolName") or "no description"
        folder = self.files[0].parent if self.files else "?"
        return f"series {number} '{description}' in {folder}"


def _value(ds, name: str):
    value = ds.get(name)
    if value is None:
        return None
    if hasattr(value, "__iter__") and not isinstance(value, (str, bytes)):
        return [str(v) for v in value]
    try:
        return float(value) if name in ("InversionTime", "RepetitionTime", "EchoTime", "FlipAngle") else str(value)
    except (TypeError, ValueError):
        return None


def scan_dicom(root: Path) -> tuple[list[DicomSeries], list[Skipped]]:
    """Every DICOM series under ``root`` (any nesting), grouped by study, plus the files that are not usable DICOM."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    series: dict[str, DicomSeries] = {}
    skipped: list[Skipped] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            if filename.startswith(".") or filename.upper() == "DICOMDIR" or filename.endswith((".nii", ".nii.gz", ".json")):
                continue
            try:
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            except InvalidDicomError:  # no DICOM preamble: an export's viewer, index or notes, not a broken image
                skipped.append(Skipped(str(path), f"{path} is not a DICOM file; skipped."))
                continue
            except (OSError, ValueError, EOFError, AttributeError, KeyError, TypeError) as exc:
                skipped.append(Skipped(str(path), f"{path} is not a readable DICOM file ({exc.__class__.__name__}); skipped.", bad=True))
                continue
            study_uid = str(ds.get("StudyInstanceUID", "") or "")
            series_uid = str(ds.get("SeriesInstanceUID", "") or "")
            if not study_uid or not series_uid or "PixelData" not in ds and "Rows" not in ds:
                skipped.append(Skipped(str(path), f"{path} is DICOM without an image (no study, series or pixel data); skipped.", bad=True))
                continue
            entry = series.get(series_uid)
            if entry is None:
                headers = {name: _value(ds, name) for name in HEADER_FIELDS}
                entry = series[series_uid] = DicomSeries(study_uid, series_uid, headers)
            entry.files.append(path)
            entry._datasets.append(ds)
    return list(series.values()), skipped


def _floats(ds, name: str, n: int) -> np.ndarray | None:
    value = ds.get(name)
    try:
        array = np.asarray([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return array if array.shape == (n,) else None


def _geometry(series: DicomSeries) -> tuple[str | None, list[int] | None, np.ndarray | None]:
    """(problem, slice order, positions along the normal) from the headers alone."""
    datasets = series._datasets
    orientations = [_floats(ds, "ImageOrientationPatient", 6) for ds in datasets]
    positions = [_floats(ds, "ImagePositionPatient", 3) for ds in datasets]
    spacings = [_floats(ds, "PixelSpacing", 2) for ds in datasets]
    if any(o is None for o in orientations) or any(p is None for p in positions) or any(s is None for s in spacings):
        return f"{series.name} has images without position, orientation or pixel spacing; skipped.", None, None
    first = orientations[0]
    if any(np.abs(o - first).max() > 1e-3 for o in orientations):
        return f"{series.name} mixes slice orientations; export each orientation as its own series.", None, None
    if any(int(ds.get("Rows", 0)) != int(datasets[0].get("Rows", 0)) or int(ds.get("Columns", 0)) != int(datasets[0].get("Columns", 0)) for ds in datasets):
        return f"{series.name} has slices of different sizes; skipped.", None, None
    if any(np.abs(s - spacings[0]).max() > 1e-3 for s in spacings):
        return f"{series.name} has slices with different pixel spacings; skipped.", None, None
    normal = np.cross(first[:3], first[3:])
    along = np.array([float(p @ normal) for p in positions])
    order = [int(i) for i in np.argsort(along, kind="stable")]
    along = along[order]
    steps = np.diff(along)
    if (steps < 1e-3).any():
        return f"{series.name} has {_ONE_POSITION} (multi-echo, dynamic or duplicated); skipped.", None, None
    step = float(np.median(steps))
    off = np.abs(steps - step) > 0.1 * step + 0.01
    if off.any():
        where = int(np.argmax(off))
        if np.abs(steps[where] / step - round(steps[where] / step)) < 0.1 and steps[where] > 1.5 * step:
            return f"{series.name} is missing a slice after slice {where + 1} of {len(steps) + 1}; skipped.", None, None
        return f"{series.name} has uneven slice spacing (steps from {steps.min():.2f} to {steps.max():.2f} mm); skipped.", None, None
    return None, order, along


def series_problem(series: DicomSeries) -> Skipped | None:
    """Why ``series`` cannot be used as a 3D MR volume (one sentence; ``bad`` for broken geometry), or None if it can."""
    h = series.headers
    image_type = [t.upper() for t in (h.get("ImageType") or [])]
    modality = (h.get("Modality") or "").upper()
    if modality != "MR":
        return Skipped(series.name, f"{series.name} is {modality or 'of no modality'}, not MR; skipped.")
    if "LOCALIZER" in image_type or "SCOUT" in image_type:
        return Skipped(series.name, f"{series.name} is a localizer; skipped.")
    if image_type and image_type[0] in ("DERIVED", "SECONDARY"):
        return Skipped(series.name, f"{series.name} is a {image_type[0].lower()} series (reformat, map or screen capture), not an acquisition; skipped.")
    first = series._datasets[0]
    if str(first.get("SOPClassUID", "")) == _ENHANCED_MR or int(first.get("NumberOfFrames", 1) or 1) > 1:
        return Skipped(series.name, f"{series.name} is a multi-frame (enhanced) DICOM, which MedSynth does not read; export it as classic images.")
    if len(series.files) < MIN_SLICES:
        return Skipped(series.name, f"{series.name} has {len(series.files)} image(s): a 2D or partial series, not a 3D volume; skipped.")
    problem, _, _ = _geometry(series)
    # Several images at one position is a legitimate acquisition (multi-echo, dynamic) prepare does not use; any
    # other geometry problem (missing slice, uneven spacing, mixed orientations...) is a broken series.
    return Skipped(series.name, problem, bad=_ONE_POSITION not in problem) if problem else None


def read_series(series: DicomSeries) -> sitk.Image:
    """The series as a float32 SimpleITK image in LPS physical space (call ``series_problem`` first).

    Raises ValueError with one sentence when the pixel data cannot be decoded.
    """
    import pydicom

    problem, order, along = _geometry(series)
    if problem:
        raise ValueError(problem)
    slices = []
    for index in order:
        path = series.files[index]
        try:
            ds = pydicom.dcmread(path)
            pixels = ds.pixel_array.astype(np.float32)
        except Exception as exc:  # pydicom raises many types for compressed or damaged pixel data
            raise ValueError(f"{path} of {series.name} has pixel data that cannot be decoded ({exc.__class__.__name__}); series skipped.") from None
        slope = float(ds.get("RescaleSlope", 1) or 1)
        intercept = float(ds.get("RescaleIntercept", 0) or 0)
        if pixels.ndim != 2:
            raise ValueError(f"{path} of {series.name} is not a single grey-level slice; series skipped.")
        slices.append(pixels * slope + intercept)
    volume = np.stack(slices)  # (slices, rows, columns) = SimpleITK's (z, y, x)
    first = series._datasets[order[0]]
    iop = _floats(first, "ImageOrientationPatient", 6)
    row_dir, col_dir = iop[:3], iop[3:]
    normal = np.cross(row_dir, col_dir)
    pixel_spacing = _floats(first, "PixelSpacing", 2)
    step = float(np.median(np.diff(along)))
    image = sitk.GetImageFromArray(volume)
    image.SetSpacing((float(pixel_spacing[1]), float(pixel_spacing[0]), step))
    image.SetOrigin(tuple(float(v) for v in _floats(first, "ImagePositionPatient", 3)))
    image.SetDirection(tuple(float(v) for v in np.column_stack([row_dir, col_dir, normal]).ravel()))
    return image
