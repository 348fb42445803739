"""prepare's input side: classification from headers, series checks and bad input, on small DICOM/NIfTI files."""

from __future__ import annotations

import json
import shutil

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from medsynth_engine.cli import main
from medsynth_engine.errors import MedSynthError
from medsynth_engine.phantom.dicom_study import IDENTIFIERS, SeriesSpec, write_study
from medsynth_engine.prepare import PrepareRequest, prepare
from medsynth_engine.prepare.classify import classify_headers, classify_name, load_sequence_map
from medsynth_engine.prepare.sources import find_studies


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("AX T1 MPRAGE POST GD", "t1ce"), ("t1_mprage_sag_p2_iso", "t1"), ("T1 KM tra", "t1ce"),
        ("T1 SE avec gado", "t1ce"), ("3D T1 pre contrast", "t1"), ("sT1W_3D_TFE", "t1"),
        ("t2_tse_tra_512", "t2"), ("AX T2 FSE", "t2"), ("t2_tirm_tra_dark-fluid", "flair"),
        ("Sag CUBE FLAIR", "flair"), ("AX T2 FLAIR", "flair"), ("BRAVO +C", "t1ce"),
    ],
)
def test_series_names_of_several_vendors_and_languages(name, expected):
    assert classify_name(name)[0] == expected


def test_timing_classifies_when_the_name_says_nothing():
    assert classify_headers({"SeriesDescription": "series 7", "RepetitionTime": 9000.0, "EchoTime": 120.0, "InversionTime": 2500.0}).sequence == "flair"
    assert classify_headers({"SeriesDescription": "series 8", "RepetitionTime": 4000.0, "EchoTime": 100.0}).sequence == "t2"
    t1ce = classify_headers({"SeriesDescription": "x", "RepetitionTime": 8.0, "EchoTime": 3.0, "ContrastBolusAgent": "Gd"})
    assert t1ce.sequence == "t1ce" and t1ce.basis == "timing" and 0 < t1ce.confidence < 0.95
    both = classify_headers({"SeriesDescription": "T1 3D", "RepetitionTime": 8.0, "EchoTime": 3.0})
    assert both.sequence == "t1" and both.confidence > t1ce.confidence
    assert classify_headers({"SeriesDescription": "DWI b1000"}).sequence == "unknown"


def test_sequence_map_is_checked(tmp_path):
    good = tmp_path / "map.json"
    good.write_text('{"My Odd Series": "T1CE", "4": "ignore"}')
    assert load_sequence_map(good) == {"my odd series": "t1ce", "4": "ignore"}
    bad = tmp_path / "bad.json"
    bad.write_text('{"x": "dwi"}')
    with pytest.raises(MedSynthError, match="bad.json"):
        load_sequence_map(bad)


def _tiny_subject() -> dict[str, sitk.Image]:
    """A 24^3 ellipsoid 'head' at 4 mm: enough to write real DICOM series quickly."""
    grid = np.indices((24, 24, 24)).astype(np.float32) - 11.5
    head = ((grid / np.array([9, 10, 9])[:, None, None, None]) ** 2).sum(0) < 1
    images = {}
    for name in ("t1", "t1ce", "t2", "flair", "brain"):
        image = sitk.GetImageFromArray((head * 800).astype(np.float32))
        image.SetSpacing((4.0, 4.0, 4.0))
        image.SetOrigin((-46.0, -46.0, -46.0))
        images[name] = image
    return images


def test_bad_dicom_series_are_named_and_skipped(tmp_path):
    specs = (
        SeriesSpec("t1", "T1 3D with a gap", 9.0, 3.5, spacing=(4.0, 4.0, 4.0), fov_mm=(80.0, 80.0, 80.0), drop_slice=8),
        SeriesSpec("localizer", "3-pl loc", 5.0, 2.0, spacing=(4.0, 4.0, 20.0), fov_mm=(80.0, 80.0, 40.0), image_type="ORIGINAL\\PRIMARY\\LOCALIZER"),
        SeriesSpec("t2", "T2 ADC map", 4000.0, 90.0, spacing=(4.0, 4.0, 4.0), fov_mm=(80.0, 80.0, 80.0), image_type="DERIVED\\SECONDARY\\ADC"),
        SeriesSpec("t2", "T2 2D", 4000.0, 90.0, spacing=(4.0, 4.0, 8.0), fov_mm=(80.0, 80.0, 32.0)),
    )
    write_study(tmp_path / "in" / "study", _tiny_subject(), specs)
    (tmp_path / "in" / "notes.txt").write_text("not an image")
    mixed = tmp_path / "in" / "study" / "S001" / "IM0001.dcm"
    import pydicom

    ds = pydicom.dcmread(mixed)
    ds.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    ds.save_as(tmp_path / "in" / "study" / "S001" / "IM9999.dcm")
    (tmp_path / "in" / "study" / "S003" / "IM0003.dcm").write_bytes(b"\0" * 128 + b"DICM" + b"\x02\x00")  # DICOM, no image
    studies, unreadable = find_studies(tmp_path / "in", {})
    assert {s.what: s.bad for s in unreadable} == {str(tmp_path / "in" / "notes.txt"): False, str(tmp_path / "in" / "study" / "S003" / "IM0003.dcm"): True}
    reasons = {s.reason: s.bad for s in studies[0].skipped}
    text = " ".join(reasons)
    assert "'T1 3D with a gap'" in text and "mixes slice orientations" in text
    assert "'3-pl loc'" in text and "localizer" in text
    assert "'T2 ADC map'" in text and "derived" in text
    assert "'T2 2D'" in text and "2D or partial series" in text
    # Broken (stops a run without --skip-bad): the mixed orientations; passed over by design: the rest.
    assert [r for r, bad in reasons.items() if bad] == [next(r for r in reasons if "mixes slice orientations" in r)]
    messages: list[str] = []
    out = tmp_path / "out"
    with pytest.raises(MedSynthError, match=r"IM0003.dcm is DICOM without an image \(no study, series or pixel data\) \(1 more problem\(s\) in the input\); "
                       r"fix the input or use --skip-bad to prepare the rest \(nothing was written\)\.$"):
        prepare(PrepareRequest(input=tmp_path / "in", out=out, log=messages.append))
    assert not out.exists() and not messages  # stopped before any work
    with pytest.raises(MedSynthError, match="No study .* could be prepared"):
        prepare(PrepareRequest(input=tmp_path / "in", out=out, skip_bad=True, log=messages.append))
    assert not out.exists() and not list(tmp_path.glob(".out.partial-*"))
    assert any("no usable MR series" in m for m in messages) and any("IM0003.dcm is DICOM without an image" in m for m in messages)


def test_missing_slice_is_told_apart_from_uneven_spacing(tmp_path):
    spec = SeriesSpec("t1", "T1", 9.0, 3.5, spacing=(4.0, 4.0, 4.0), fov_mm=(80.0, 80.0, 80.0), drop_slice=10)
    write_study(tmp_path / "in", _tiny_subject(), (spec,))
    studies, _ = find_studies(tmp_path / "in", {})
    assert "missing a slice after slice 10" in studies[0].skipped[0].reason


def _bad_niftis(root) -> tuple:
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir()
    four_d, flat_path = root / "a" / "x_t1.nii.gz", root / "b" / "y_flair.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((8, 8, 8, 3), np.float32), np.eye(4)), four_d)
    singular = np.eye(4)
    singular[2, 2] = 0.0
    flat = nib.Nifti1Image(np.ones((8, 8, 8), np.float32), None)
    flat.set_sform(singular, code=1)  # a scanner export with a zero slice axis; nibabel refuses it as a qform
    nib.save(flat, flat_path)
    return four_d, flat_path


def test_bad_nifti_is_named_and_the_cli_exits_2(tmp_path, capsys):
    four_d, flat = _bad_niftis(tmp_path / "in")
    code = main(["prepare", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{four_d} holds a 4D image" in err and "(1 more problem(s) in the input); fix the input or use --skip-bad" in err
    assert not (tmp_path / "out").exists()
    code = main(["prepare", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--skip-bad"])
    err = capsys.readouterr().err
    assert code == 2  # nothing left to prepare: still an error, each file named
    assert f"{four_d} holds a 4D image" in err and f"{flat} has a singular affine" in err
    assert not (tmp_path / "out").exists()


def test_skip_bad_prepares_the_rest_and_lists_the_bad_ones(make_phantom_set, tmp_path, capsys):
    """One good study with a broken extra file, one study of broken files only: stopped whole, or the good case made."""
    case = next(p for p in make_phantom_set(n=1, shape=(16, 16, 16), spacing=8.0, channels="t1,t1ce,t2,flair,seg").iterdir() if p.is_dir())
    good = tmp_path / "in" / "Doe_Jane"
    good.mkdir(parents=True)
    for channel in ("t1", "t1ce", "seg"):
        shutil.copy(case / f"{case.name}_{channel}.nii.gz", good / f"scan_{channel}.nii.gz")
    four_d, flat = _bad_niftis(tmp_path / "in" / "Roe_John")
    shutil.move(flat, good / "scan_flair.nii.gz")
    argv = ["prepare", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--atlas", "none", "--skull-strip", "none", "--spacing", "4"]
    assert main(argv) == 2
    assert f"{good / 'scan_flair.nii.gz'} has a singular affine" in capsys.readouterr().err and not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))
    assert main([*argv, "--skip-bad", "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert len(result["cases"]) == 1 and result["not_prepared"] == 1 and result["bad_skipped"] == 3
    assert f"{good / 'scan_flair.nii.gz'} has a singular affine" in captured.err and f"{four_d} holds a 4D image" in captured.err
    assert "3 broken file(s), series or study/studies were skipped" in captured.err
    out = tmp_path / "out"
    assert sorted(p.name for p in (out / result["cases"][0]).glob("*.nii.gz")) == sorted(f"{result['cases'][0]}_{c}.nii.gz" for c in ("t1", "t1ce", "seg"))
    page = (out / "prepare.html").read_text()
    assert "has a singular affine" in page and "holds a 4D image" in page and "has no usable MR series" in page
    assert "Doe" not in page and "Roe" not in page and str(tmp_path) not in page  # listed by kind, never by path


def test_key_inside_the_output_is_refused(tmp_path):
    (tmp_path / "in").mkdir()
    code = main(["prepare", "--input", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--keep-key", str(tmp_path / "out" / "key.json")])
    assert code == 2


def test_identifiers_are_in_the_test_study(tmp_path):
    """The test data must carry what the output must not (else the privacy test proves nothing)."""
    spec = SeriesSpec("t1", "T1", 9.0, 3.5, spacing=(4.0, 4.0, 4.0), fov_mm=(80.0, 80.0, 80.0))
    write_study(tmp_path / "in", _tiny_subject(), (spec,))
    raw = b"".join(p.read_bytes() for p in (tmp_path / "in").rglob("*.dcm"))
    assert all(value.encode() in raw for value in IDENTIFIERS.values())


def test_implausible_cases_are_flagged():
    from medsynth_engine.prepare.qc import plausibility_flags

    good = {"t2": {"mi_before": -0.5, "mi_after": -0.9}}
    assert plausibility_flags(1500.0, good, [1.0, 1.05, 0.95]) == []
    assert "brain mask of 300 ml" in plausibility_flags(300.0, good, None)[0]
    assert "worse" in plausibility_flags(1500.0, {"t2": {"mi_before": -0.9, "mi_after": -0.5}}, None)[0]
    assert "implausible" in plausibility_flags(1500.0, good, [1.6, 1.0, 1.0])[0]
