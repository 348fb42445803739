"""2D memorisation audit: single-slice cases planted from a training slice (exact, noisy, shifted, flipped,
resampled to another grid, all at once) are flagged and traced to their slice; middle slices of other phantom
subjects are not; the CLI picks the 2D audit for a 2D set and says so; bad inputs are one sentence."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from medsynth_engine.audit2d import run_slice_audit
from medsynth_engine.audit2d.fingerprint import head_slices
from medsynth_engine.cli import main
from medsynth_engine.errors import MedSynthError
from medsynth_engine.nifti_io import read_nifti, write_nifti
from scipy import ndimage

GRID = {"shape": (32, 32, 32), "spacing": 7.5}
SOURCE_SLICE = 15
PLANTS = ("copy", "noise", "shift", "flip", "resampled", "all")
CHANNELS = ("t1", "t1ce", "t2", "flair")


def _case_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _write_slice(dest: Path, name: str, planes: dict[str, np.ndarray], spacing: float) -> None:
    """One case of a 2D set as a 2D family writes it: (X, Y, 1) NIfTI files with an axial slice's affine."""
    (dest / name).mkdir(parents=True)
    for channel, plane in planes.items():
        dtype = np.uint8 if channel == "seg" else np.int16
        write_nifti(dest / name / f"{name}_{channel}.nii.gz", np.round(plane)[..., None].astype(dtype), np.diag([spacing] * 3 + [1.0]))


def _plant(plane: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    plane = plane.astype(np.float32)
    if kind in ("noise", "all"):
        plane = plane + rng.normal(0.0, 0.03 * np.percentile(plane, 99), plane.shape)
    if kind in ("shift", "all"):  # 2 and 1 pixels, background coming in from the edge
        padded = np.pad(plane, 3, mode="constant", constant_values=plane.min())
        plane = padded[5 : 5 + plane.shape[0], 2 : 2 + plane.shape[1]]
    if kind in ("flip", "all"):
        plane = plane[::-1]
    if kind in ("resampled", "all"):  # a model working at twice the training grid
        plane = ndimage.zoom(plane, 2.0, order=1)
    return plane


@pytest.fixture(scope="module")
def sets(make_phantom_set, tmp_path_factory):
    """Training: 4 phantom volumes. Synthetic 2D set: 3 middle slices of other subjects plus the plants, all of
    training case 1's slice ``SOURCE_SLICE``."""
    train = make_phantom_set(n=4, seed=0, **GRID)
    others = make_phantom_set(n=3, seed=1, **GRID)
    synthetic = tmp_path_factory.mktemp("audit2d") / "synthetic"
    for k, case in zip((12, 16, 19), _case_dirs(others), strict=True):
        _write_slice(synthetic, f"fresh-{case.name}", {c: read_nifti(case / f"{case.name}_{c}.nii.gz")[0][:, :, k] for c in CHANNELS}, 7.5)
    source = _case_dirs(train)[1]
    rng = np.random.default_rng(7)
    for kind in PLANTS:
        planes = {c: _plant(read_nifti(source / f"{source.name}_{c}.nii.gz")[0][:, :, SOURCE_SLICE], kind, rng) for c in CHANNELS}
        _write_slice(synthetic, f"planted-{kind}", planes, 3.75 if kind in ("resampled", "all") else 7.5)
    return train, synthetic, source.name


@pytest.fixture(scope="module")
def report(sets, tmp_path_factory):
    train, synthetic, _ = sets
    path = tmp_path_factory.mktemp("audit2d-json") / "audit.json"
    code = main(["audit", "--synthetic", str(synthetic), "--train", str(train), "--json", str(path), "--quiet"])
    return code, json.loads(path.read_text())


def test_planted_slices_are_flagged_and_traced_to_their_training_slice(sets, report):
    _, _, source = sets
    code, data = report
    assert code == 1 and data["dimensions"] == 2
    by_case = {c["case"]: c for c in data["cases"]}
    for kind in PLANTS:
        case = by_case[f"planted-{kind}"]
        assert case["flagged"] and case["score"] > 0.8, (kind, case)
        assert case["nearest_training_case"] == source and abs(case["nearest_training_slice"] - SOURCE_SLICE) <= 1, (kind, case)
        assert set(case["ncc_per_channel"]) == set(CHANNELS) and len(case["shift_voxels"]) == 2
    assert by_case["planted-copy"]["score"] == pytest.approx(1.0, abs=1e-4)
    assert by_case["planted-copy"]["nearest_training_slice"] == SOURCE_SLICE
    assert by_case["planted-flip"]["flip_axes"] == [0] and by_case["planted-all"]["flip_axes"] == [0]
    assert by_case["planted-copy"]["flip_axes"] == [] and by_case["planted-resampled"]["score"] > 0.9


def test_other_subjects_slices_are_not_flagged_and_every_head_slice_is_compared(sets, report):
    train, _, _ = sets
    _, data = report
    fresh = [c for c in data["cases"] if c["case"].startswith("fresh-")]
    assert len(fresh) == 3 and all(not c["flagged"] and c["score"] < 0.5 for c in fresh), fresh
    assert data["n_synthetic"] == 3 + len(PLANTS) and data["n_flagged"] == len(PLANTS)
    heads = sum(len(head_slices([read_nifti(d / f"{d.name}_{c}.nii.gz")[0] for c in CHANNELS])) for d in _case_dirs(train))
    assert data["n_training"] == heads and data["n_training_cases"] == 4 and 4 * 20 <= heads < 4 * 32
    assert data["reference_distance"] > 0 and data["threshold"] == 0.5


def test_the_cli_names_flagged_slices_and_exits_0_without_copies(sets, tmp_path, capsys):
    train, synthetic, source = sets
    assert main(["audit", "--synthetic", str(synthetic), "--train", str(train), "--quiet"]) == 1
    out = capsys.readouterr().out
    assert "planted-flip  " in out and f"nearest {source} slice" in out and "PROBABLE COPY" in out
    assert f"{len(PLANTS)} of {3 + len(PLANTS)} synthetic slice(s) flagged" in out
    fresh_only = tmp_path / "fresh"
    for case in _case_dirs(synthetic):
        if case.name.startswith("fresh-"):
            shutil.copytree(case, fresh_only / case.name)
    assert main(["audit", "--synthetic", str(fresh_only), "--train", str(train), "--quiet"]) == 0
    assert "0 of 3 synthetic slice(s) flagged" in capsys.readouterr().out


def test_the_shareable_report_names_no_training_slice(sets):
    train, synthetic, _ = sets
    shared = json.dumps(run_slice_audit(synthetic, train, channels=("t1", "flair")).shareable())
    assert "nearest_training" not in shared and '"dimensions": 2' in shared


def test_bad_inputs_are_one_sentence(sets, tmp_path, capsys):
    train, synthetic, _ = sets
    single = tmp_path / "single"
    shutil.copytree(_case_dirs(train)[0], single / "one")
    assert main(["audit", "--synthetic", str(synthetic), "--train", str(single), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medsynth: error: ") and "at least 2" in err and err.count("\n") == 0
    with pytest.raises(MedSynthError, match="threshold"):
        run_slice_audit(synthetic, train, threshold=0.0)
    with pytest.raises(MedSynthError, match="grid"):
        run_slice_audit(synthetic, train, grid=4)
