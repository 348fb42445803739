"""Memorisation audit: planted copies (exact, noisy, shifted, flipped, all three) are flagged and matched to
their source; distinct phantom cases are not; exit codes 0/1/2; bad inputs are one clear sentence."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from medsynth_engine.cli import main
from medsynth_engine.errors import MedSynthError
from medsynth_engine.evaluate.audit import run_audit
from medsynth_engine.nifti_io import read_nifti, write_nifti
from medsynth_engine.setexport import export_set

# A 240 mm field of view like BraTS, so the head has background around it (a shift moves it, not crops it).
GRID = {"shape": (32, 32, 32), "spacing": 7.5}
PLANTS = ("copy", "noise", "shift", "flip", "all")


def _case_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _plant(source: Path, dest: Path, name: str, kind: str, rng: np.random.Generator) -> None:
    """Write a copy of the BraTS case folder ``source`` as case ``name``: exact, or with noise / shift / flip."""
    out = dest / name
    out.mkdir()
    for path in sorted(source.iterdir()):
        channel = path.name.split("_")[-1].split(".")[0]
        array, affine = read_nifti(path)
        array = array.astype(np.float32)
        if channel != "seg" and kind in ("noise", "all"):
            array = array + rng.normal(0.0, 0.03 * np.percentile(array, 99), array.shape)
        if kind in ("shift", "all"):  # 3, 1 and 2 voxels, background coming in from the edge
            padded = np.pad(array, 3, mode="constant", constant_values=array.min())
            array = padded[6 : 6 + array.shape[0], 2 : 2 + array.shape[1], 5 : 5 + array.shape[2]]
        if kind in ("flip", "all"):
            array = array[::-1]
        dtype = np.uint8 if channel == "seg" else np.int16
        write_nifti(out / f"{name}_{channel}.nii.gz", np.round(array).astype(dtype), affine)


@pytest.fixture(scope="module")
def sets(make_phantom_set, tmp_path_factory):
    """A training set of 5 cases, and a synthetic set of 3 distinct cases plus 5 planted copies of training case 1."""
    train = make_phantom_set(n=5, seed=0, **GRID)
    distinct = make_phantom_set(n=3, seed=1, **GRID)
    synthetic = tmp_path_factory.mktemp("audit") / "synthetic"
    shutil.copytree(distinct, synthetic)
    source = _case_dirs(train)[1]
    rng = np.random.default_rng(7)
    for kind in PLANTS:
        _plant(source, synthetic, f"planted-{kind}", kind, rng)
    return train, distinct, synthetic, source.name


@pytest.fixture(scope="module")
def planted_run(sets, tmp_path_factory):
    train, _, synthetic, _ = sets
    report = tmp_path_factory.mktemp("audit-json") / "audit.json"
    code = main(["audit", "--synthetic", str(synthetic), "--train", str(train), "--json", str(report), "--quiet"])
    return code, json.loads(report.read_text())


def test_planted_copies_are_flagged_and_matched_to_their_source(sets, planted_run):
    _, _, _, source = sets
    code, report = planted_run
    assert code == 1
    by_case = {c["case"]: c for c in report["cases"]}
    for kind in PLANTS:
        case = by_case[f"planted-{kind}"]
        assert case["flagged"], (kind, case)
        assert case["nearest_training_case"] == source, (kind, case)
        assert case["score"] > 0.8, (kind, case)
        assert set(case["ncc_per_channel"]) == {"t1", "t1ce", "t2", "flair"}
    assert by_case["planted-copy"]["score"] == pytest.approx(1.0, abs=1e-4)
    assert by_case["planted-flip"]["flip_axes"] == [0] and by_case["planted-all"]["flip_axes"] == [0]
    assert by_case["planted-shift"]["score"] > 0.95


def test_distinct_cases_are_not_flagged_and_the_json_lists_every_case(sets, planted_run):
    _, distinct, _, _ = sets
    _, report = planted_run
    assert report["n_synthetic"] == 3 + len(PLANTS) and len(report["cases"]) == report["n_synthetic"]
    assert report["n_flagged"] == len(PLANTS)
    assert report["memorised_fraction"] == pytest.approx(len(PLANTS) / (3 + len(PLANTS)))
    assert report["threshold"] == 0.5 and report["n_training"] == 5 and report["reference_distance"] > 0
    for case in report["cases"]:
        if case["case"].startswith("ms-"):
            assert not case["flagged"] and case["score"] < 0.5, case
    assert {c.name for c in _case_dirs(distinct)} <= {c["case"] for c in report["cases"]}


def test_no_copies_exit_0(sets, capsys):
    train, distinct, _, _ = sets
    assert main(["audit", "--synthetic", str(distinct), "--train", str(train), "--quiet"]) == 0
    assert "0 of 3 synthetic case(s) flagged" in capsys.readouterr().out


def test_a_set_audited_against_itself_is_all_copies(sets):
    train = sets[0]
    result = run_audit(train, train)
    assert all(c["flagged"] and c["ncc"] == pytest.approx(1.0, abs=1e-5) for c in result.cases)
    assert result.memorised_fraction == 1.0
    assert "nearest_training_case" not in json.dumps(result.shareable())


def test_nnunet_and_plain_folders_are_audited(sets, tmp_path):
    train, distinct = sets[0], sets[1]
    nnunet = export_set(distinct, tmp_path / "nnunet", layout="nnunet")
    result = run_audit(nnunet, train)
    assert result.memorised_fraction == 0.0 and len(result.cases) == 3
    result = run_audit(distinct, nnunet)  # nnU-Net as the training set: the same subjects
    assert result.memorised_fraction == 1.0
    plain = tmp_path / "plain"
    plain.mkdir()
    for case in _case_dirs(train)[:3]:
        shutil.copy(case / f"{case.name}_t1.nii.gz", plain / f"{case.name}.nii.gz")
    result = run_audit(plain, train, channels=("t1",))
    assert result.channels == ("t1",) and all(c["flagged"] for c in result.cases)


def _error(capsys, *args: str) -> str:
    assert main(["audit", *args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medsynth: error: ") and err.count("\n") == 0
    return err


def test_bad_inputs_are_one_sentence_and_exit_2(sets, tmp_path, capsys):
    train, distinct, _, _ = sets
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "is empty" in _error(capsys, "--synthetic", str(empty), "--train", str(train))
    assert "does not exist" in _error(capsys, "--synthetic", str(tmp_path / "nope"), "--train", str(train))
    # Mismatched channels: a synthetic set with T1 only.
    t1_only = tmp_path / "t1only"
    for case in _case_dirs(distinct):
        (t1_only / case.name).mkdir(parents=True)
        shutil.copy(case / f"{case.name}_t1.nii.gz", t1_only / case.name)
    err = _error(capsys, "--synthetic", str(t1_only), "--train", str(train))
    assert "channels differ" in err and "--channels t1" in err
    assert main(["audit", "--synthetic", str(t1_only), "--train", str(train), "--channels", "t1", "--quiet"]) == 0
    capsys.readouterr()
    assert "lacks" in _error(capsys, "--synthetic", str(t1_only), "--train", str(train), "--channels", "t1,flair")
    # An unreadable (truncated) file is named.
    broken = tmp_path / "broken"
    shutil.copytree(distinct, broken)
    victim = next(broken.glob("*/*_flair.nii.gz"))
    victim.write_bytes(gzip.compress(b"not a nifti")[:20])
    err = _error(capsys, "--synthetic", str(broken), "--train", str(train))
    assert victim.name in err and "not a readable NIfTI" in err
    # One training case gives no typical distance; a threshold outside (0, 1] is refused.
    single = tmp_path / "single"
    shutil.copytree(_case_dirs(train)[0], single / "one")
    assert "at least 2 cases" in _error(capsys, "--synthetic", str(distinct), "--train", str(single))
    assert "threshold" in _error(capsys, "--synthetic", str(distinct), "--train", str(train), "--threshold", "1.5")
    assert "does not exist" in _error(capsys, "--synthetic", str(distinct), "--train", str(train), "--json", str(tmp_path / "x" / "a.json"))
    with pytest.raises(MedSynthError, match="grid"):
        run_audit(distinct, train, grid=4)
