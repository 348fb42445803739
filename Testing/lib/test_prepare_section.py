"""The Prepare section's plain-Python side: its inputs checked, studies of a DICOM database staged for the engine,
and a prepare job's cases listed with their QC verdicts."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from dicom_database import DicomDatabase  # Testing/slicer (on sys.path through Testing/conftest.py)
from prepare_study import write_small_study

from MedSynthLib.prepare_section import (
    database_studies,
    prepared_cases,
    stage_files,
    study_files,
    validate_prepare,
)
from MedSynthLib.requests import InputError

OPTIONS = {"atlas": "mni152", "skull_strip": "auto", "n4": False, "skip_bad": False}


def test_inputs_are_checked_with_one_sentence_each(tmp_path):
    with pytest.raises(InputError, match="No input is chosen"):
        validate_prepare(input=" ", out="", **OPTIONS)
    with pytest.raises(InputError, match=f"The input folder {tmp_path / 'nope'} does not exist"):
        validate_prepare(input=tmp_path / "nope", out="", **OPTIONS)
    used = tmp_path / "used"
    used.mkdir()
    (used / "x").write_text("")
    with pytest.raises(InputError, match=f"The output folder {used} is not empty"):
        validate_prepare(input=tmp_path, out=used, **OPTIONS)
    with pytest.raises(InputError, match="Unknown skull stripping 'bet'"):
        validate_prepare(input=tmp_path, out="", **{**OPTIONS, "skull_strip": "bet"})
    params = validate_prepare(input=tmp_path, out=tmp_path / "new", **{**OPTIONS, "skip_bad": True})
    assert params == {"input": str(tmp_path), "out": str(tmp_path / "new"), "atlas": "mni152", "skull_strip": "auto",
                      "n4": False, "skip_bad": True}
    assert "out" not in validate_prepare(input=tmp_path, out="", **OPTIONS)  # the job's own folder


def test_picked_studies_are_linked_into_a_folder_the_engine_reads(tmp_path):
    database = DicomDatabase(write_small_study(tmp_path / "db" / "study"))
    with pytest.raises(InputError, match="DICOM database is not open"):
        database_studies(DicomDatabase(None))
    studies = database_studies(database)
    assert len(studies) == 1 and studies[0].label == "Doe Jane Quincy - 20240315"
    with pytest.raises(InputError, match="No study is picked"):
        study_files(database, [])
    with pytest.raises(InputError, match="The study 1.2.3 has no files"):
        study_files(database, ["1.2.3"])
    files = study_files(database, [studies[0].uid])
    sources = sorted(str(p) for p in (tmp_path / "db").rglob("*.dcm"))
    assert sorted(files.values()) == sources and len({Path(k).parent for k in files}) == 2  # two series folders
    staged = stage_files(files, tmp_path / "work" / "dicom")
    for relative, source in files.items():
        assert (staged / relative).read_bytes() == Path(source).read_bytes()
        assert os.stat(staged / relative).st_ino == os.stat(source).st_ino  # a hard link, not a copy


def test_cases_are_listed_with_their_qc_verdict(tmp_path):
    out = tmp_path / "prepared"
    for case_id, flags in (("ms-a", []), ("ms-b", ["brain mask of 300 ml is outside 800-2800 ml"])):
        (out / case_id).mkdir(parents=True)
        (out / case_id / f"{case_id}_prepare.json").write_text(json.dumps({"id": case_id, "flags": flags}))
    job = {"kind": "prepare", "state": "succeeded", "output_dir": str(out), "result": {"cases": ["ms-a", "ms-b"]}}
    cases = prepared_cases(job)
    assert [c.verdict for c in cases] == ["ms-a: QC passed", "ms-b: FLAGGED - brain mask of 300 ml is outside 800-2800 ml"]
    assert cases[1].qc_png == out / "ms-b" / "ms-b_qc.png" and cases[1].mask == out / "ms-b" / "ms-b_mask.nii.gz"
    assert prepared_cases({**job, "state": "failed"}) == [] and prepared_cases({**job, "kind": "generate"}) == []
    (out / "ms-b" / "ms-b_prepare.json").unlink()
    with pytest.raises(InputError, match="ms-b_prepare.json cannot be read"):
        prepared_cases(job)
