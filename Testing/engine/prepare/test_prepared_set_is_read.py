"""A prepared folder is what the other commands take: ``medsynth prepare`` on two small NIfTI studies (once, for the
module), then ``finetune``, ``evaluate``, ``audit``, ``add-channel`` and ``add-tumour`` on its output, each through the
CLI's ``main`` (one torch import for all).

The path is prepare's cheapest that still gives four sequences and a brain mask: the atlas skull strip (no network)
in MNI152 space at 4 mm. The studies are phantom cases of 16^3 voxels at 8 mm, copied under hospital-like names.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from medsynth_engine.addtumour import structure_from_outline
from medsynth_engine.cli import main
from scipy import ndimage

pytestmark = pytest.mark.slow

CHANNELS = ("t1", "t1ce", "t2", "flair", "seg")


def _studies(source: Path, root: Path) -> Path:
    """One folder per study with the scanner's own file names, as NIfTI exports arrive."""
    for index, case in enumerate(sorted(p for p in source.iterdir() if p.is_dir())):
        study = root / f"study{index}"
        study.mkdir(parents=True)
        for channel in CHANNELS:
            shutil.copy(case / f"{case.name}_{channel}.nii.gz", study / f"scan_{channel}.nii.gz")
    return root


@pytest.fixture(scope="module")
def prepared_set(make_phantom_set, tmp_path_factory) -> tuple[Path, list[str]]:
    """The prepared folder and its case ids: prepare's CLI (atlas skull strip, 4 mm) on two studies, run once."""
    root = tmp_path_factory.mktemp("prepared_set")
    studies = _studies(make_phantom_set(n=2, shape=(16, 16, 16), spacing=8.0, channels=",".join(CHANNELS), seed=15), root / "in")
    prepared = root / "prepared"
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = main(["prepare", "--input", str(studies), "--out", str(prepared), "--skull-strip", "atlas", "--spacing", "4", "--json"])
    assert code == 0
    result = json.loads(printed.getvalue())
    cases = sorted(result["cases"])
    assert len(cases) == 2 and not result["flagged"] and sorted(p.name for p in prepared.iterdir() if p.is_dir()) == cases
    return prepared, cases


def test_finetune_evaluate_and_audit_read_a_prepared_folder(prepared_set, tmp_path, capsys):
    prepared, cases = prepared_set
    for case in cases:
        files = sorted(p.name for p in (prepared / case).glob("*.nii.gz"))
        assert files == sorted(f"{case}_{c}.nii.gz" for c in (*CHANNELS, "mask"))
        assert nib.load(prepared / case / f"{case}_t1.nii.gz").shape == (49, 58, 47)  # the MNI152 box (197 x 233 x 189 mm) at 4 mm

    model = tmp_path / "model"
    assert main(["finetune", "--model", "pgan3d", "--data", str(prepared), "--out", str(model), "--steps", "2", "--resolution", "8",
                 "--width", "8", "--batch-size", "2", "--device", "cpu", "--quiet"]) == 0
    card = json.loads((model / "model.json").read_text())
    assert card["channels"] == list(CHANNELS)  # the four sequences and the carried label map; the mask is no channel
    assert card["preprocessing"]["data"] == {"layout": "brats", "cases": 2, "skipped": 0}
    assert card["training_data"].startswith("2 case(s) (t1, t1ce, t2, flair + tumour labels) from a brats folder")
    capsys.readouterr()

    report = tmp_path / "report"
    assert main(["evaluate", "--model", str(model), "-n", "2", "--real", str(prepared), "--out", str(report), "--grid", "16",
                 "--diversity-cases", "2", "--quiet"]) == 0
    metrics = json.loads((report / "metrics.json").read_text())
    assert metrics["n_real"] == 2 and metrics["n_synthetic"] == 2 and metrics["channels"] == ["t1", "t1ce", "t2", "flair"]
    assert {"mmd", "frechet_distance", "ms_ssim_real", "memorised_fraction", "audit", "tumour_statistics"} <= set(metrics)
    assert np.isfinite(metrics["mmd"]) and metrics["audit"]["n_synthetic"] == 2
    capsys.readouterr()

    # A copy of a prepared case handed back as 'synthetic' must be found in the prepared training set.
    copied = tmp_path / "synthetic" / "syn-0"
    copied.mkdir(parents=True)
    for channel in CHANNELS:
        shutil.copy(prepared / cases[1] / f"{cases[1]}_{channel}.nii.gz", copied / f"syn-0_{channel}.nii.gz")
    audit = tmp_path / "audit.json"
    assert main(["audit", "--synthetic", str(copied.parent), "--train", str(prepared), "--json", str(audit), "--quiet"]) == 1
    found = json.loads(audit.read_text())
    assert found["n_flagged"] == 1 and found["cases"][0]["nearest_training_case"] == cases[1] and found["cases"][0]["ncc"] > 0.99
    assert "PROBABLE COPY" in capsys.readouterr().out


def _read(path: Path) -> tuple[np.ndarray, np.ndarray]:
    image = nib.load(path)
    return np.asanyarray(image.dataobj), image.affine


def test_add_channel_reads_a_prepared_case_with_its_brain_mask(prepared_set, tmp_path, capsys):
    prepared, cases = prepared_set
    case = prepared / cases[0]
    t1, affine = _read(case / f"{cases[0]}_t1.nii.gz")
    brain = _read(case / f"{cases[0]}_mask.nii.gz")[0] > 0
    before = sorted(p.name for p in case.iterdir())
    for channel in ("seg", "ct"):
        out = tmp_path / channel
        assert main(["add-channel", "--channel", channel, "--case", str(case), "--out", str(out), "--device", "cpu", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        # seg uses prepare's mask; ct does not (a CT is made of the skull; prepare's images are stripped already).
        mask = str((case / f"{cases[0]}_mask.nii.gz").resolve())
        assert result["brain_mask"] == (mask if channel == "seg" else None)
        assert sorted(result["inputs"]) == ["flair", "t1", "t1ce", "t2"]  # the mask is not read as a sequence
        written, written_affine = _read(out / f"{cases[0]}_{channel}.nii.gz")
        assert written.shape == t1.shape and np.allclose(written_affine, affine, atol=1e-4)
        if channel == "seg":
            assert set(np.unique(written)) <= {0, 1, 2, 4} and not written[~brain].any()  # BraTS codes, only inside the brain
        else:
            assert np.isfinite(written).all() and written.min() >= -1100 and written.max() <= 3100  # HU
    assert sorted(p.name for p in case.iterdir()) == before  # --out: the prepared case is left as it was


def test_add_tumour_reads_a_prepared_case(prepared_set, tmp_path, capsys):
    prepared, cases = prepared_set
    case = prepared / cases[1]
    brain_file = case / f"{cases[1]}_mask.nii.gz"
    brain, affine = _read(brain_file)
    brain = brain > 0
    spacing = float(np.linalg.norm(affine[:3, 0]))
    depth = ndimage.distance_transform_edt(brain, sampling=spacing)
    centre = np.unravel_index(int(np.argmax(depth)), brain.shape)  # the brain's deepest voxel
    grid = np.indices(brain.shape)
    blob = ((grid - np.array(centre)[:, None, None, None]) ** 2).sum(0) * spacing**2 <= 10.0**2
    codes = structure_from_outline(blob & brain, (spacing,) * 3)
    codes[~brain] = 0  # drawn inside the brain mask, oedema included
    drawn = tmp_path / "drawn.nii.gz"
    nib.save(nib.Nifti1Image(codes, affine), drawn)

    out = tmp_path / "out"
    assert main(["add-tumour", "--case", str(case), "--mask", str(drawn), "--out", str(out), "--steps", "2", "--margin-mm", "8",
                 "--device", "cpu", "--quiet"]) == 0
    new = out / cases[1]
    assert capsys.readouterr().out.strip() == str(new.absolute())
    lesion = codes > 0
    far = ndimage.distance_transform_edt(~lesion, sampling=spacing) >= 8.0
    changed = np.zeros(brain.shape, dtype=bool)
    for channel in ("t1", "t1ce", "t2", "flair"):
        before, _ = _read(case / f"{cases[1]}_{channel}.nii.gz")
        after, after_affine = _read(new / f"{cases[1]}_{channel}.nii.gz")
        assert after.shape == before.shape and np.allclose(after_affine, affine, atol=1e-4)
        assert np.array_equal(after[far], before[far])  # bit-identical beyond the margin
        changed |= after != before
    assert changed[lesion].mean() > 0.5 and not changed[far].any()
    seg, _ = _read(new / f"{cases[1]}_seg.nii.gz")
    old_seg, _ = _read(case / f"{cases[1]}_seg.nii.gz")
    assert np.array_equal(seg[lesion], codes[lesion]) and np.array_equal(seg[~lesion], old_seg[~lesion])  # merged over prepare's _seg
    assert np.array_equal(_read(new / f"{cases[1]}_mask.nii.gz")[0] > 0, brain)  # the brain mask follows the case
