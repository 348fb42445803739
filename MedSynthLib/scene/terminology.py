"""Standard codes for the BraTS segments, so Slicer (and DICOM SEG export) knows what NCR, ED and ET are.

The codes live in one file, ``MedSynth/Resources/Terminology/MedSynthBraTS.term.json`` (dcmqi's segment-context
format, which Slicer's Terminologies module loads): SNOMED CT Necrosis (6574001), Edema (79654002) and Neoplasm
(108369006; SNOMED has no "enhancing tumour" concept) in the Morphologically Altered Structure category, keyed by
their BraTS label value (``3dSlicerIntegerLabel``). Each segment gets the entry as its ``TerminologyEntry`` tag, in
the serialised form of Slicer 5.8/5.10 (``vtkSlicerTerminologiesModuleLogic::SerializeTerminologyEntry``), with the
brain as the anatomic region.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

__all__ = ["TERMINOLOGY_FILE", "brats_terminology", "set_segment_terminology"]

TERMINOLOGY_FILE = "MedSynthBraTS.term.json"
#: Slicer's own anatomic context, and the brain in it (SNOMED CT 12738006)
ANATOMY = "Anatomic codes - DICOM master list~SCT^12738006^Brain~^^"


def _terminology_path() -> Path:
    """Beside MedSynthLib: ``Resources/Terminology`` in the extension's install tree, ``MedSynth/Resources/...`` in
    a source checkout."""
    here = Path(__file__).resolve().parents[2]
    for folder in (here / "Resources", here / "MedSynth" / "Resources"):
        path = folder / "Terminology" / TERMINOLOGY_FILE
        if path.is_file():
            return path
    raise FileNotFoundError(f"{TERMINOLOGY_FILE} is missing beside MedSynthLib; reinstall the MedSynth extension.")


def _code(item: dict[str, Any]) -> str:
    return f"{item['CodingSchemeDesignator']}^{item['CodeValue']}^{item['CodeMeaning']}"


@functools.lru_cache(maxsize=1)
def brats_terminology() -> dict[int, str]:
    """BraTS label value -> the serialised terminology entry of its segment."""
    context = json.loads(_terminology_path().read_text(encoding="utf-8"))
    name = context["SegmentationCategoryTypeContextName"]
    entries = {}
    for category in context["SegmentationCodes"]["Category"]:
        for kind in category["Type"]:
            entries[int(kind["3dSlicerIntegerLabel"])] = f"{name}~{_code(category)}~{_code(kind)}~^^~{ANATOMY}"
    return entries


def set_segment_terminology(segment: Any, code: int) -> None:
    """Tag a vtkSegment with the standard terminology of its BraTS label (the tag Slicer 5.8 and 5.10 read)."""
    segment.SetTag(segment.GetTerminologyEntryTagName(), brats_terminology()[code])
