"""A prepared folder is what the other commands take: ``medsynth prepare`` on two small NIfTI studies, then
``finetune``, ``evaluate`` and ``audit`` on its output, each through the CLI's ``main`` (one torch import for all).

The path is prepare's cheapest that still gives four sequences and a brain mask: the atlas skull strip (no network)
in MNI152 space at 4 mm. The studies are phantom cases of 16^3 voxels at 8 mm, copied under hospital-like names.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from medsynth_engine.cli import main

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


def test_finetune_evaluate_and_audit_read_a_prepared_folder(make_phantom_set, tmp_path, capsys):
    studies = _studies(make_phantom_set(n=2, shape=(16, 16, 16), spacing=8.0, channels=",".join(CHANNELS), seed=15), tmp_path / "in")
    prepared = tmp_path / "prepared"
    assert main(["prepare", "--input", str(studies), "--out", str(prepared), "--skull-strip", "atlas", "--spacing", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    cases = sorted(result["cases"])
    assert len(cases) == 2 and not result["flagged"] and sorted(p.name for p in prepared.iterdir() if p.is_dir()) == cases
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
