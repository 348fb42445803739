"""BraTS segments carry standard terminology (SNOMED CT codes) from MedSynth/Resources/Terminology, as Slicer reads it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

slicer = pytest.importorskip("slicer", reason="slicer-core is a pinned test dependency")
vtk = pytest.importorskip("vtk")

from MedSynthLib.conventions import BRATS_LABEL_COLOURS, BRATS_LABELS  # noqa: E402
from MedSynthLib.scene import LABEL_TAG, load_case  # noqa: E402

TERMS = Path(__file__).resolve().parents[2] / "MedSynth" / "Resources" / "Terminology" / "MedSynthBraTS.term.json"


def test_the_term_file_matches_the_brats_labels_and_colours():
    types = json.loads(TERMS.read_text())["SegmentationCodes"]["Category"][0]["Type"]
    assert {t["3dSlicerIntegerLabel"]: t["3dSlicerLabel"] for t in types} == BRATS_LABELS
    for t in types:
        rgb = tuple(round(255 * c) for c in BRATS_LABEL_COLOURS[t["3dSlicerIntegerLabel"]])
        assert tuple(t["recommendedDisplayRGBValue"]) == rgb and t["CodingSchemeDesignator"] == "SCT"


def test_loaded_segments_are_tagged_with_their_snomed_codes(make_phantom_set):
    scene = slicer.vtkMRMLScene()
    case = next(p for p in make_phantom_set(n=1, shape=(16, 16, 16), spacing=8.0).iterdir() if p.is_dir())
    segmentation = load_case(case, scene).segmentation.GetSegmentation()
    found = {}
    for i in range(segmentation.GetNumberOfSegments()):
        segment = segmentation.GetNthSegment(i)
        code, entry = vtk.mutable(""), vtk.mutable("")
        assert segment.GetTag(LABEL_TAG, code) and segment.GetTag(segment.GetTerminologyEntryTagName(), entry)
        found[int(str(code))] = str(entry).split("~")
    # Slicer's serialised form: context~category~type~type modifier~anatomic context~region~region modifier
    assert {code: parts[2] for code, parts in found.items()} == {
        1: "SCT^6574001^Necrosis", 2: "SCT^79654002^Edema", 4: "SCT^108369006^Neoplasm"}
    for parts in found.values():
        assert len(parts) == 7 and parts[0] == "MedSynth - BraTS tumour sub-regions"
        assert parts[1] == "SCT^49755003^Morphologically Altered Structure" and parts[5] == "SCT^12738006^Brain"
