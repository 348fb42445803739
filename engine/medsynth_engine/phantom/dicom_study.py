"""A synthetic PACS export of one phantom subject: what ``medsynth prepare`` meets in a hospital, with known truth.

The subject is rendered once with its head (scalp, skull, CSF rim) on a fine grid; each series is then sampled
from it on its own scanner grid (orientation, oblique angle, slice thickness, field of view) after a known rigid
head motion, and written slice by slice with pydicom as classic MR images carrying made-up patient identifiers.
A localizer, a derived reformat and a series with a missing slice are mixed in. The truth (motions, brain mask,
identifiers) comes back so tests and benchmarks can check what prepare recovers.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk

__all__ = ["SeriesSpec", "StudyTruth", "render_subject", "write_study", "DEFAULT_SERIES", "IDENTIFIERS"]

#: Made-up identifiers written into every file; none of them may reach prepare's output.
IDENTIFIERS = {
    "PatientName": "Doe^Jane^Quincy",
    "PatientID": "PID-8675309",
    "PatientBirthDate": "19700101",
    "StudyDate": "20240315",
    "SeriesDate": "20240315",
    "AcquisitionDate": "20240315",
    "InstitutionName": "Saint Examplia Hospital",
    "InstitutionAddress": "1 Example Road, Exampleton",
    "ReferringPhysicianName": "House^Gregory",
    "AccessionNumber": "ACC77665544",
    "StationName": "MRSCANNER7",
}


@dataclass(frozen=True)
class SeriesSpec:
    """One series: sequence, names and timing, geometry (LPS rotation in degrees, spacing, field of view), motion."""

    sequence: str
    description: str
    tr: float
    te: float
    ti: float = 0.0
    agent: str = ""
    rotation_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    plane: str = "axial"
    spacing: tuple[float, float, float] = (2.0, 2.0, 2.0)
    fov_mm: tuple[float, float, float] = (200.0, 240.0, 190.0)
    motion_deg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    motion_mm: tuple[float, float, float] = (0.0, 0.0, 0.0)
    image_type: str = "ORIGINAL\\PRIMARY\\M\\ND"
    drop_slice: int | None = None


DEFAULT_SERIES = (
    SeriesSpec("t1ce", "AX T1 3D SPGR POST GD", 8.5, 3.2, agent="Gadobutrol 1 mmol/ml"),
    SeriesSpec("t1", "T1 3D SAG", 9.0, 3.5, plane="sagittal", motion_deg=(3.0, -2.0, 2.5), motion_mm=(4.0, -3.0, 2.0)),
    SeriesSpec("t2", "t2_tse_tra", 4500.0, 102.0, spacing=(1.6, 1.6, 3.0), fov_mm=(180.0, 210.0, 150.0), motion_deg=(-1.5, 1.0, 0.5), motion_mm=(-2.0, 1.5, -3.0)),
    SeriesSpec("flair", "AX FLAIR oblique", 9000.0, 120.0, ti=2500.0, rotation_deg=(15.0, 0.0, 0.0), spacing=(2.0, 2.0, 4.0), motion_deg=(-2.0, 3.0, 1.0), motion_mm=(-3.0, 2.0, 5.0)),
    SeriesSpec("localizer", "3-pl loc", 5.0, 2.0, spacing=(2.0, 2.0, 20.0), fov_mm=(200.0, 240.0, 60.0), image_type="ORIGINAL\\PRIMARY\\LOCALIZER"),
    SeriesSpec("t1", "T1 MPR COR", 9.0, 3.5, plane="coronal", image_type="DERIVED\\SECONDARY\\MPR"),
    SeriesSpec("t2", "t2_tse_tra repeat", 4500.0, 102.0, spacing=(2.0, 2.0, 3.0), drop_slice=20),
)


@dataclass
class StudyTruth:
    """What the study was made from: motions (LPS, fixed = reference scanner space), truth images, identifiers."""

    folder: Path
    motions: dict[str, sitk.Euler3DTransform] = field(default_factory=dict)
    brain: sitk.Image | None = None
    images: dict[str, sitk.Image] = field(default_factory=dict)
    series_uids: list[str] = field(default_factory=list)
    study_uid: str = ""


def render_subject(seed: int = 3, spacing: float = 2.0) -> dict[str, sitk.Image]:
    """The subject's four sequences, tumour labels and brain mask with the head kept, as LPS SimpleITK images."""
    from ..prepare.register import nifti_to_sitk
    from .atlas import AtlasLoader
    from .params import draw_subject
    from .render import Grid, render

    atlas = AtlasLoader().get()
    params = draw_subject(seed, atlas)
    shape = tuple(int(round(mm / spacing)) for mm in (200.0, 236.0, 204.0))
    centre = np.asarray(atlas.brain_centre_mm) + np.array([0.0, -8.0, -6.0])
    grid = Grid.centred(shape, (spacing,) * 3, centre)
    arrays = render(params, atlas, grid, ("t1", "t1ce", "t2", "flair", "seg", "brain"), skull_strip=False)
    return {name: nifti_to_sitk(array, grid.affine) for name, array in arrays.items()}


def _direction(spec: SeriesSpec) -> np.ndarray:
    """Columns: row direction, column direction, slice normal (LPS), as DICOM's usual axial/sagittal/coronal planes."""
    row, column = {
        "axial": ((1, 0, 0), (0, 1, 0)),
        "sagittal": ((0, 1, 0), (0, 0, -1)),
        "coronal": ((1, 0, 0), (0, 0, -1)),
    }[spec.plane]
    base = np.column_stack([row, column, np.cross(row, column)]).astype(float)
    rotation = sitk.Euler3DTransform((0, 0, 0), *np.radians(spec.rotation_deg))
    return np.array(rotation.GetMatrix()).reshape(3, 3) @ base


def _acquisition_grid(spec: SeriesSpec, centre: np.ndarray) -> sitk.Image:
    direction = _direction(spec)
    size = [max(1, int(round(f / s))) for f, s in zip(spec.fov_mm, spec.spacing, strict=True)]
    grid = sitk.Image(size, sitk.sitkUInt8)
    grid.SetSpacing(spec.spacing)
    grid.SetDirection(tuple(direction.ravel()))
    half = direction @ ((np.array(size) - 1) * np.array(spec.spacing) / 2.0)
    grid.SetOrigin(tuple(float(v) for v in centre - half))
    return grid


def _motion(spec: SeriesSpec, centre: np.ndarray) -> sitk.Euler3DTransform:
    transform = sitk.Euler3DTransform(tuple(centre), *np.radians(spec.motion_deg))
    transform.SetTranslation(spec.motion_mm)
    return transform


def write_study(folder: Path, subject: dict[str, sitk.Image], series: tuple[SeriesSpec, ...] = DEFAULT_SERIES, *,
                identifiers: dict[str, str] | None = None, uid_seed: str = "1") -> StudyTruth:
    """Write the series of one study as DICOM files under ``folder`` (one sub-folder per series)."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    identifiers = identifiers or IDENTIFIERS
    folder = Path(folder)
    reference = subject["t1ce"]
    size = np.array(reference.GetSize())
    centre = np.array(reference.TransformContinuousIndexToPhysicalPoint(tuple(float(v) for v in (size - 1) / 2.0)))
    study_uid = generate_uid(entropy_srcs=[uid_seed, "study"])
    truth = StudyTruth(folder=folder, brain=subject["brain"], images=subject, study_uid=study_uid)
    for number, spec in enumerate(series, start=1):
        grid = _acquisition_grid(spec, centre)
        motion = _motion(spec, centre)
        source = subject["t1" if spec.sequence == "localizer" else spec.sequence]
        # The head moved by ``motion``: the scanner's point p shows the subject's point motion^-1(p).
        volume = sitk.Resample(source, grid, motion.GetInverse(), sitk.sitkLinear, 0.0, sitk.sitkFloat32)
        pixels = np.clip(np.round(sitk.GetArrayFromImage(volume)), 0, 65535).astype(np.uint16)
        if spec.sequence in ("t1", "t1ce", "t2", "flair") and spec.image_type.startswith("ORIGINAL") and spec.drop_slice is None:
            truth.motions.setdefault(spec.sequence, motion)
        series_uid = generate_uid(entropy_srcs=[uid_seed, str(number)])
        truth.series_uids.append(series_uid)
        target = folder / f"S{number:03d}"
        target.mkdir(parents=True, exist_ok=True)
        direction = np.array(grid.GetDirection()).reshape(3, 3)
        for k in range(pixels.shape[0]):
            if spec.drop_slice is not None and k == spec.drop_slice:
                continue
            meta = FileMetaDataset()
            meta.MediaStorageSOPClassUID = MRImageStorage
            meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[uid_seed, str(number), str(k)])
            meta.TransferSyntaxUID = ExplicitVRLittleEndian
            ds = pydicom.Dataset()
            ds.file_meta = meta
            for name, value in identifiers.items():
                setattr(ds, name, value)
            ds.SOPClassUID = MRImageStorage
            ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
            ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
            ds.FrameOfReferenceUID = generate_uid(entropy_srcs=[uid_seed, "frame"])
            ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "MR", number, k + 1
            ds.SeriesDescription = ds.ProtocolName = spec.description
            ds.ImageType = spec.image_type.split("\\")
            ds.RepetitionTime, ds.EchoTime = spec.tr, spec.te
            if spec.ti:
                ds.InversionTime = spec.ti
                ds.ScanningSequence = ["SE", "IR"]
            else:
                ds.ScanningSequence = "GR" if spec.tr < 100 else "SE"
            if spec.agent:
                ds.ContrastBolusAgent = spec.agent
            ds.StudyTime = ds.SeriesTime = datetime.time(9, 30).strftime("%H%M%S")
            ds.PatientSex, ds.PatientAge = "F", "054Y"
            ds.ImageOrientationPatient = [float(v) for v in (*direction[:, 0], *direction[:, 1])]
            position = np.array(grid.GetOrigin()) + direction[:, 2] * spec.spacing[2] * k
            ds.ImagePositionPatient = [float(v) for v in position]
            ds.PixelSpacing = [spec.spacing[1], spec.spacing[0]]
            ds.SliceThickness = spec.spacing[2]
            ds.Rows, ds.Columns = pixels.shape[1], pixels.shape[2]
            ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
            ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
            ds.PixelData = pixels[k].tobytes()
            ds.save_as(target / f"IM{k + 1:04d}.dcm", enforce_file_format=True)
    return truth
