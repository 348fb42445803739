"""A stand-in for ``slicer.dicomDatabase`` (CTK's ctkDICOMDatabase, which slicer-core lacks) over real DICOM files.

It indexes the files with pydicom as Slicer's DICOM import does and answers exactly the accessors the Prepare
section calls, with ctkDICOMDatabase's names and return types (checked against commontk/CTK's
``Libs/DICOM/Core/ctkDICOMDatabase.h``): ``isOpen`` (a Qt property, so an attribute in PythonQt), ``patients()``,
``studiesForPatient()``, ``seriesForStudy()``, ``filesForSeries()``, ``nameForPatient()``,
``descriptionForStudy()``, ``fieldForStudy()``. Any other attribute is an AttributeError, so the panel cannot
come to rely on something this stand-in invents; an unknown UID gives an empty answer, as the SQL queries do.
"""

from __future__ import annotations

from pathlib import Path


class DicomDatabase:
    """The ctkDICOMDatabase accessors over the DICOM files under a folder (indexed once, in memory)."""

    __slots__ = ("isOpen", "_patients", "_studies", "_series", "_files", "_fields")

    def __init__(self, folder: Path | None = None) -> None:
        import pydicom

        self.isOpen = folder is not None
        self._patients: dict[str, str] = {}  # patient UID -> name
        self._studies: dict[str, list[str]] = {}  # patient UID -> study UIDs
        self._series: dict[str, list[str]] = {}  # study UID -> series UIDs
        self._files: dict[str, list[str]] = {}  # series UID -> files
        self._fields: dict[str, dict[str, str]] = {}  # study UID -> its fields
        for path in sorted(Path(folder).rglob("*")) if folder is not None else ():
            if not path.is_file():
                continue
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            patient, study, series = str(ds.PatientID), str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID)
            self._patients.setdefault(patient, str(ds.get("PatientName", "")))
            if study not in self._studies.setdefault(patient, []):
                self._studies[patient].append(study)
                self._fields[study] = {"StudyDate": str(ds.get("StudyDate", "")), "StudyDescription": str(ds.get("StudyDescription", ""))}
            if series not in self._series.setdefault(study, []):
                self._series[study].append(series)
            self._files.setdefault(series, []).append(str(path))

    def patients(self) -> list[str]:
        return list(self._patients)

    def studiesForPatient(self, patientUID: str) -> list[str]:  # noqa: N802, N803 - CTK's names
        return list(self._studies.get(patientUID, []))

    def seriesForStudy(self, studyUID: str) -> list[str]:  # noqa: N802, N803
        return list(self._series.get(studyUID, []))

    def filesForSeries(self, seriesUID: str, hits: int = -1) -> list[str]:  # noqa: N802, N803
        files = self._files.get(seriesUID, [])
        return list(files if hits < 0 else files[:hits])

    def nameForPatient(self, patientUID: str) -> str:  # noqa: N802, N803
        return self._patients.get(patientUID, "")

    def descriptionForStudy(self, studyUID: str) -> str:  # noqa: N802, N803
        return self._fields.get(studyUID, {}).get("StudyDescription", "")

    def fieldForStudy(self, field: str, studyInstanceUID: str) -> str:  # noqa: N802, N803
        return self._fields.get(studyInstanceUID, {}).get(field, "")
