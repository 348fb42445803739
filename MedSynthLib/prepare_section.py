"""The panel's Prepare section in plain Python: hospital studies in, a ``prepare`` job out, prepared cases back.

The input is a folder, or studies picked from Slicer's DICOM database (``slicer.dicomDatabase``, a
ctkDICOMDatabase: ``patients()``, ``studiesForPatient()``, ``seriesForStudy()``, ``filesForSeries()``); the
engine reads folders, so the picked studies' files are linked (copied where a link cannot be made) into a new
folder under the panel's work folder, which the engine may read. When the job ends, each prepared case is listed
with its QC verdict (flagged or not, from ``<case>_prepare.json``) and read, with its brain mask, for the views.
No Qt and no torch: Slicer's Python (3.9 on) and the standalone app use it alike.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .conventions import MASK_CHANNEL
from .i18n import _
from .requests import InputError

__all__ = [
    "ATLASES", "SKULL_STRIP", "DicomStudy", "PreparedCase", "database_studies", "study_files", "stage_files",
    "validate_prepare", "prepared_cases", "read_prepared_case", "prepare_job", "load_prepared",
]

#: The engine's choices (its ``prepare`` params schema says the same; the controller checks against it).
ATLASES = ("mni152", "none")
SKULL_STRIP = ("auto", "model", "atlas", "none")


@dataclass(frozen=True)
class DicomStudy:
    """One study of Slicer's DICOM database as the section lists it (shown on this machine only)."""

    uid: str
    label: str


def _database(db: Any) -> Any:
    if db is None or not db.isOpen:
        raise InputError("Slicer's DICOM database is not open; import the studies in the DICOM module first, or choose a folder.")
    return db


def database_studies(db: Any) -> list[DicomStudy]:
    """Every study in the database: patient name, study date and description (the hospital's own view)."""
    studies = []
    for patient in _database(db).patients():
        name = db.nameForPatient(patient) or "?"
        for study in db.studiesForPatient(patient):
            date = db.fieldForStudy("StudyDate", study) or ""
            description = db.descriptionForStudy(study) or ""
            label = " - ".join(part for part in (name.replace("^", " "), date, description) if part)
            studies.append(DicomStudy(study, label))
    return studies


def study_files(db: Any, study_uids: list[str]) -> dict[str, str]:
    """Each file of the picked studies and where it goes in the engine's input folder (``study001/series001/...``).

    Asks the database only (GUI thread: its SQL connection belongs to the thread that opened it)."""
    if not study_uids:
        raise InputError("No study is picked; pick studies in the list, or choose a folder.")
    _database(db)
    files: dict[str, str] = {}
    for s, study in enumerate(study_uids):
        found = 0
        for r, series in enumerate(db.seriesForStudy(study)):
            for i, source in enumerate(db.filesForSeries(series)):
                files[f"study{s + 1:03d}/series{r + 1:03d}/{i + 1:05d}.dcm"] = source
                found += 1
        if not found:
            raise InputError(f"The study {study} has no files in Slicer's DICOM database; import it again.")
    return files


def stage_files(files: dict[str, str], folder: Path) -> Path:
    """``files`` (from :func:`study_files`) under ``folder``: hard links, copies where a link cannot be made."""
    folder = Path(folder)
    for relative, source in files.items():
        destination = folder / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, destination)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(source, destination)
    return folder


def validate_prepare(*, input: str | os.PathLike, out: str | os.PathLike | None, atlas: str, skull_strip: str,
                     n4: bool, skip_bad: bool) -> dict[str, Any]:
    """Parameters of a ``prepare`` job; ``out`` empty: the job's own folder."""
    if not str(input).strip():
        raise InputError("No input is chosen; choose a folder of DICOM or NIfTI files, or pick studies of the DICOM database.")
    source = Path(input).expanduser().absolute()
    if not source.is_dir():
        raise InputError(f"The input folder {source} does not exist; choose a folder of DICOM or NIfTI files.")
    if atlas not in ATLASES:
        raise InputError(f"Unknown atlas '{atlas}'; choose " + " or ".join(ATLASES) + ".")
    if skull_strip not in SKULL_STRIP:
        raise InputError(f"Unknown skull stripping '{skull_strip}'; choose " + ", ".join(SKULL_STRIP) + ".")
    params: dict[str, Any] = {"input": str(source), "atlas": atlas, "skull_strip": skull_strip, "n4": bool(n4),
                              "skip_bad": bool(skip_bad)}
    if out is not None and str(out).strip():
        target = Path(out).expanduser().absolute()
        if target.exists() and (not target.is_dir() or any(target.iterdir())):
            raise InputError(f"The output folder {target} is not empty; choose a new folder (nothing is overwritten).")
        params["out"] = str(target)
    return params


@dataclass
class PreparedCase:
    """One prepared case: its folder, the QC's flags (empty: nothing implausible) and its QC mosaic."""

    case_id: str
    folder: Path
    flags: list[str] = field(default_factory=list)

    @property
    def qc_png(self) -> Path:
        return self.folder / f"{self.case_id}_qc.png"

    @property
    def mask(self) -> Path:
        return self.folder / f"{self.case_id}_{MASK_CHANNEL}.nii.gz"

    @property
    def verdict(self) -> str:
        """One line for the section's list: the case and whether its QC flagged it."""
        if self.flags:
            return _("{case}: FLAGGED - {flags}").format(case=self.case_id, flags="; ".join(self.flags))
        return _("{case}: QC passed").format(case=self.case_id)


def prepared_cases(job: dict[str, Any]) -> list[PreparedCase]:
    """The cases a succeeded ``prepare`` job wrote, in its order, each with its QC flags."""
    if not job or job.get("kind") != "prepare" or job.get("state") != "succeeded":
        return []
    out = Path(job.get("output_dir") or (job.get("result") or {}).get("output_dir") or "")
    cases = []
    for case_id in (job.get("result") or {}).get("cases", []):
        folder = out / case_id
        info_file = folder / f"{case_id}_prepare.json"
        try:
            info = json.loads(info_file.read_text())
        except (OSError, ValueError):
            raise InputError(f"{info_file} cannot be read; the prepared case is incomplete.") from None
        cases.append(PreparedCase(case_id, folder, list(info.get("flags") or [])))
    return cases


def read_prepared_case(case: PreparedCase) -> Any:
    """The case's sequences (and label map) with its brain mask, read for the scene (safe on a worker thread)."""
    from .scene.reading import read_case_arrays, read_channel_arrays

    arrays = read_case_arrays(case.folder)
    if case.mask.is_file():
        arrays.channels[MASK_CHANNEL] = read_channel_arrays(case.mask, MASK_CHANNEL)
    return arrays


def prepare_job(logic: Any, parameters: Any, study_uids: list[str] | None = None, db: Any = None):
    """The engine call of the section's Prepare button (GUI thread here; the call runs on the worker thread).

    With picked studies, their files are listed here and linked into a new folder under the panel's work folder by
    the call, before it submits the job; else the input is the section's folder."""
    options = {"out": parameters.prepareOut, "atlas": parameters.prepareAtlas, "skull_strip": parameters.prepareSkullStrip,
               "n4": parameters.prepareN4, "skip_bad": parameters.prepareSkipBad}
    controller = logic.controller
    if not study_uids:
        validate_prepare(input=parameters.prepareInput, **options)  # a bad field is refused here, before any work
        return lambda: controller.prepare(input=parameters.prepareInput, **options)
    files = study_files(db, study_uids)
    folder = controller.input_folder("dicom-studies")
    return lambda: controller.prepare(input=stage_files(files, folder), **options)


def load_prepared(logic: Any, job: dict[str, Any]) -> list[PreparedCase]:
    """Each case a prepare job made, read on the worker thread and built into the scene one node per tick."""
    cases = prepared_cases(job)
    for case in cases:
        logic.loadCaseInSteps(lambda case=case: read_prepared_case(case))
    return cases
