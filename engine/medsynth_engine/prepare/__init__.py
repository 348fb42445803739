"""Hospital scans in: DICOM studies or NIfTI folders to BraTS-ready cases (``medsynth prepare``)."""

from .pipeline import PrepareRequest, prepare

__all__ = ["PrepareRequest", "prepare"]
