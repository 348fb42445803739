"""From an input folder to studies: which volumes each study has, which sequence each is, what was skipped and why.

A study is one DICOM StudyInstanceUID, or one folder of NIfTI files. Per study, one volume per sequence is kept
(the most confident classification, then the finest voxels); the rest are listed as skipped with the reason.
Volumes are loaded lazily (``load``), so a bad one fails on its own and the batch goes on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import SimpleITK as sitk

from ..errors import MedSynthError
from ..nifti_io import read_header, read_nifti
from .classify import SEQUENCES, Classification, classify_headers, classify_name, mapped
from .dicom import Skipped, read_series, scan_dicom, series_problem
from .register import nifti_to_sitk

__all__ = ["SourceVolume", "Study", "find_studies", "holds_images"]

_NIFTI = re.compile(r"^(?P<stem>.+?)\.nii(\.gz)?$")


@dataclass
class SourceVolume:
    """One usable volume: its console name (never written to the output), sequence and loader."""

    name: str
    classification: Classification
    load: Callable[[], sitk.Image]
    voxel_mm3: float = 0.0
    source_key: str = ""


@dataclass
class Study:
    """One future case: the volumes by sequence, an optional label map and what was left out."""

    key: str
    volumes: dict[str, SourceVolume] = field(default_factory=dict)
    label: SourceVolume | None = None
    skipped: list[Skipped] = field(default_factory=list)
    found: int = 0


def _pick(study: Study, candidates: list[SourceVolume]) -> None:
    """Keep the best volume per sequence; list the others and the unknowns as skipped."""
    for sequence in SEQUENCES:
        mine = [c for c in candidates if c.classification.sequence == sequence]
        mine.sort(key=lambda c: (-c.classification.confidence, c.voxel_mm3))
        if mine:
            study.volumes[sequence] = mine[0]
            for other in mine[1:]:
                study.skipped.append(Skipped(other.name, f"{other.name} is another {sequence}; {mine[0].name} was used."))
    for c in candidates:
        if c.classification.sequence == "unknown":
            study.skipped.append(Skipped(c.name, f"{c.name} could not be classified ({c.classification.evidence}); name it in --sequences to use it."))


def _dicom_studies(root: Path, mapping: dict[str, str]) -> tuple[list[Study], list[Skipped]]:
    all_series, unreadable = scan_dicom(root)
    studies: dict[str, Study] = {}
    candidates: dict[str, list[SourceVolume]] = {}
    for series in all_series:
        study = studies.setdefault(series.study_uid, Study(key=f"DICOM study {series.study_uid}"))
        study.found += 1
        problem = series_problem(series)
        if problem:
            study.skipped.append(problem)
            continue
        h = series.headers
        override = mapped(mapping, series.series_uid, h.get("SeriesDescription"), h.get("ProtocolName"), h.get("SeriesNumber"))
        if override == "ignore":
            study.skipped.append(Skipped(series.name, f"{series.name} is ignored by the sequence map."))
            continue
        classification = Classification(override, 1.0, "sequence map", "map") if override else classify_headers(h)
        first = series._datasets[0]
        try:
            px = [float(v) for v in first.get("PixelSpacing", [1, 1])]
            thickness = float(first.get("SliceThickness", 1) or 1)
        except (TypeError, ValueError):
            px, thickness = [1.0, 1.0], 1.0
        candidates.setdefault(series.study_uid, []).append(SourceVolume(
            series.name, classification, lambda s=series: read_series(s), px[0] * px[1] * thickness,
            f"series {h.get('SeriesNumber')} ({series.series_uid})",
        ))
    for uid, study in studies.items():
        _pick(study, candidates.get(uid, []))
    return list(studies.values()), unreadable


def _load_nifti(path: Path) -> sitk.Image:
    try:
        array, affine = read_nifti(path)
    except MedSynthError as exc:
        raise ValueError(f"{str(exc).rstrip('.')}; skipped.") from None
    return nifti_to_sitk(np.asarray(array, dtype=np.float32 if not np.issubdtype(array.dtype, np.integer) else array.dtype), affine)


def _nifti_studies(root: Path, mapping: dict[str, str]) -> list[Study]:
    folders: dict[Path, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and _NIFTI.match(path.name) and not path.name.startswith("."):
            folders.setdefault(path.parent, []).append(path)
    studies = []
    for folder, files in folders.items():
        study = Study(key=f"NIfTI folder {folder}", found=len(files))
        candidates = []
        for path in files:
            stem = _NIFTI.match(path.name).group("stem")
            try:
                read_header(path)  # 4D, singular affine, truncated...: named now, from a few bytes, before any work
            except MedSynthError as exc:
                study.skipped.append(Skipped(str(path), f"{str(exc).rstrip('.')}; skipped.", bad=True))
                continue
            if re.search(r"seg|label", stem, re.IGNORECASE) and mapped(mapping, path.name, stem) is None:
                study.label = SourceVolume(str(path), Classification("seg", 1.0, "file name", "name"), lambda p=path: _load_nifti(p), source_key=path.name)
                continue
            override = mapped(mapping, path.name, stem)
            if override == "ignore":
                study.skipped.append(Skipped(str(path), f"{path} is ignored by the sequence map."))
                continue
            by_name = classify_name(re.sub(r"^.*?[_-](?=(t1|t2|flair|seg))", "", stem, flags=re.IGNORECASE))
            classification = (
                Classification(override, 1.0, "sequence map", "map") if override
                else Classification(by_name[0], 0.7, by_name[1], "name") if by_name
                else Classification("unknown", 0.0, "the file name does not say which sequence it is")
            )
            zooms = nib.load(str(path)).header.get_zooms()[:3]  # read_header has opened it already
            candidates.append(SourceVolume(str(path), classification, lambda p=path: _load_nifti(p), float(np.prod(zooms)), path.name))
        _pick(study, candidates)
        studies.append(study)
    return studies


def find_studies(root: Path, mapping: dict[str, str]) -> tuple[list[Study], list[Skipped]]:
    """The studies under ``root`` (DICOM or NIfTI, detected from the files) and the files no study could use."""
    root = Path(root)
    has_nifti = any(_NIFTI.match(p.name) for p in root.rglob("*") if p.is_file())
    if has_nifti:
        return _nifti_studies(root, mapping), []
    return _dicom_studies(root, mapping)


def holds_images(root: Path) -> bool:
    """Whether ``root`` holds a NIfTI file or a DICOM file (its 'DICM' preamble): a cheap check before a job starts.

    Stops at the first one found, so it costs a few reads on a real export; hidden files are passed over.
    """
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            if _NIFTI.match(name):
                return True
            try:
                with open(Path(dirpath) / name, "rb") as handle:
                    if handle.read(132)[128:] == b"DICM":
                        return True
            except OSError:
                continue
    return False
