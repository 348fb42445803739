"""prepare end to end on a synthetic PACS export of a phantom subject whose head, motions and brain are known.

One study (four sequences: axial, sagittal, oblique, a 4 mm thick-slice FLAIR, a smaller-FOV T2, each after its
own rigid head motion; plus a localizer, a derived reformat and a series with a missing slice, every file carrying
made-up identifiers) is prepared once at 2 mm (1 mm is the default; 2 mm keeps the test fast) with the offline
atlas skull strip, and checked. The default skull strip, deepbet's network, runs once (the suite's one real
inference: about 20 s on 2 cores) on a study of the moved sagittal T1 alone, kept in its native space.
"""

from __future__ import annotations

import gzip
import json
import stat

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
from medsynth_engine.data.layouts import find_cases
from medsynth_engine.phantom.dicom_study import DEFAULT_SERIES, IDENTIFIERS, render_subject, write_study
from medsynth_engine.prepare import PrepareRequest, prepare
from medsynth_engine.prepare.qc import TILE
from medsynth_engine.prepare.register import nifti_to_sitk
from medsynth_engine.prepare.skullstrip import deepbet_available
from PIL import Image
from scipy import ndimage

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def subject():
    return render_subject(seed=3, spacing=2.0)


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, subject):
    root = tmp_path_factory.mktemp("pacs")
    truth = write_study(root / "export" / "Doe_Jane" / "study1", subject)
    messages: list[str] = []
    result = prepare(PrepareRequest(
        input=root / "export", out=root / "out", skull_strip="atlas", keep_key=root / "key.json", spacing_mm=2.0, skip_bad=True,
        log=messages.append,
    ))
    return truth, result, messages, root


def _case(result):
    from pathlib import Path

    out = Path(result["output_dir"])
    return out, out / result["cases"][0], json.loads((out / result["cases"][0] / f"{result['cases'][0]}_prepare.json").read_text())


def test_sequences_classified_and_bad_series_named(prepared):
    truth, result, messages, _ = prepared
    _, _, info = _case(result)
    assert len(result["cases"]) == 1 and result["not_prepared"] == 0
    assert set(info["sequences"]) == {"t1", "t1ce", "t2", "flair"} and info["reference"] == "t1ce"
    assert all(s["confidence"] >= 0.9 for s in info["sequences"].values())
    text = "\n".join(messages)
    assert "'3-pl loc'" in text and "localizer" in text
    assert "'T1 MPR COR'" in text and "derived" in text
    assert "'t2_tse_tra repeat'" in text and "missing a slice" in text
    assert info["found"] == len(DEFAULT_SERIES) and len(info["skipped"]) == 3


def test_coregistration_recovers_the_known_motion(prepared):
    truth, result, _, _ = prepared
    _, case, _ = _case(result)
    centre = np.array(truth.images["t1ce"].TransformContinuousIndexToPhysicalPoint([(s - 1) / 2 for s in truth.images["t1ce"].GetSize()]))
    points = centre + np.random.default_rng(0).uniform(-60, 60, (300, 3))  # the brain, roughly
    for sequence in ("t1", "t2", "flair"):
        known = truth.motions[sequence]
        found = sitk.Euler3DTransform(sitk.ReadTransform(str(case / "transforms" / f"reference_to_{sequence}.tfm")))
        error_mm = max(np.linalg.norm(np.subtract(known.TransformPoint(tuple(p)), found.TransformPoint(tuple(p)))) for p in points)
        rotation = np.array(known.GetMatrix()).reshape(3, 3) @ np.array(found.GetMatrix()).reshape(3, 3).T
        error_deg = np.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1, 1)))
        assert error_mm < 1.0 and error_deg < 1.0, (sequence, error_mm, error_deg)


def _mask_dice(case, truth, motion: sitk.Transform) -> float:
    """Dice of the case's mask, carried back through its saved transform and the reference's head ``motion``, against
    the phantom's brain (the subject point q was seen by the scanner at motion(q))."""
    image = nib.load(case / f"{case.name}_mask.nii.gz")
    mask = nifti_to_sitk(np.asarray(image.dataobj), image.affine)
    to_reference = sitk.ReadTransform(str(case / "transforms" / "output_to_reference.tfm"))
    to_output = sitk.CompositeTransform([to_reference.GetInverse(), motion])  # motion first, then into the output grid
    native = sitk.GetArrayFromImage(sitk.Resample(mask, truth.brain, to_output, sitk.sitkNearestNeighbor, 0)) > 0
    brain = sitk.GetArrayFromImage(truth.brain) > 0
    return 2 * (native & brain).sum() / (native.sum() + brain.sum())


def test_mask_matches_the_phantom_brain(prepared):
    truth, result, _, _ = prepared
    _, case, info = _case(result)
    assert info["skull_strip"] == "atlas prior refined on t1"
    dice = _mask_dice(case, truth, sitk.Euler3DTransform())  # the reference (T1ce) did not move
    assert dice >= 0.95, dice
    brain = sitk.GetArrayFromImage(truth.brain) > 0
    assert abs(info["mask_ml"] - brain.sum() * 8 / 1000) < 0.05 * brain.sum() * 8 / 1000  # reported in native ml
    assert not info["flags"]


def test_no_identifier_anywhere_in_the_output(prepared):
    truth, result, _, root = prepared
    out, _, _ = _case(result)
    forbidden = [v.encode() for v in IDENTIFIERS.values()] + [uid.encode() for uid in truth.series_uids] + [truth.study_uid.encode()]
    forbidden += [spec.description.encode() for spec in DEFAULT_SERIES] + [str(root).encode(), b"Doe_Jane", b"Doe"]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.suffix for p in files} >= {".gz", ".png", ".tfm", ".json", ".html"}
    for path in files:
        data = path.read_bytes()
        if path.name.endswith(".gz"):
            data = gzip.decompress(data)
            header = nib.load(path).header
            assert header["descrip"].tobytes().rstrip(b"\0") == b"synthetic image (MedSynth)" and not header.extensions
        for value in forbidden:
            assert value not in data, (path.name, value)
    key = root / "key.json"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert truth.study_uid in key.read_text() and result["cases"][0] in key.read_text()


def test_output_reads_as_a_brats_set(prepared):
    _, result, _, _ = prepared
    out, case, _ = _case(result)
    layout, cases = find_cases(out)
    assert layout == "brats" and [c.id for c in cases] == [case.name]
    assert set(cases[0].files) == {"t1", "t1ce", "t2", "flair"}
    shapes = {nib.load(f).shape for f in cases[0].files.values()}
    assert len(shapes) == 1
    mask = np.asarray(nib.load(case / f"{case.name}_mask.nii.gz").dataobj) > 0
    t1ce = np.asarray(nib.load(cases[0].files["t1ce"]).dataobj)
    assert (t1ce[~mask] == 0).all() and (t1ce[mask] > 0).mean() > 0.95  # skull-stripped as BraTS data are
    assert (out / "prepare.html").read_text().count("<img") == 1
    # The QC mosaic: four rows (one per sequence); around the mask's outline the head is shown, not blacked out.
    qc = np.asarray(Image.open(case / f"{case.name}_qc.png").convert("RGB")).astype(int)
    assert qc.shape[1] == 3 * TILE and qc.shape[0] % 4 == 0
    red = (qc[..., 0] == 255) & (qc[..., 1] == 40) & (qc[..., 2] == 40)
    axial = np.s_[: qc.shape[0] // 4, :TILE]
    inside = ndimage.binary_fill_holes(red[axial])
    assert inside.sum() > 20 * red[axial].sum() > 0
    assert ((qc[axial][..., 0] > 30) & ~inside).sum() > 200  # scalp and skull of the T1 outside the outline


def test_default_skull_strip_is_deepbets_network_and_matches_the_brain(tmp_path, subject):
    """The default path's mask on a native sagittal grid, reoriented for the network and back (one real inference)."""
    assert deepbet_available(), "deepbet is a requirement (requirements-nodeps.txt): run make setup"
    t1 = next(spec for spec in DEFAULT_SERIES if spec.description == "T1 3D SAG")
    assert t1.plane == "sagittal" and any(t1.motion_deg)
    truth = write_study(tmp_path / "export" / "study", subject, (t1,))
    result = prepare(PrepareRequest(input=tmp_path / "export", out=tmp_path / "out", atlas="none", spacing_mm=2.0, log=lambda m: None))
    _, case, info = _case(result)
    assert info["skull_strip"] == "deepbet network" and info["reference"] == "t1" and not info["flags"]
    dice = _mask_dice(case, truth, truth.motions["t1"])
    assert dice >= 0.95, dice
