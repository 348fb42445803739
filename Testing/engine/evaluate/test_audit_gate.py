"""`medsynth generate --audit-against`: probable copies of training cases never reach the written set, and the
audit is recorded in manifest.json without naming any training case."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
from medsynth_engine.cli import main
from medsynth_engine.errors import MedSynthError
from medsynth_engine.generate import GenerateRequest, case_seed, generate_set
from medsynth_engine.nifti_io import read_nifti, write_nifti

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

GRID = {"shape": (32, 32, 32), "spacing": 7.5}
SMALL = ["--shape", "32", "--spacing", "7.5", "--quiet"]


@pytest.fixture(scope="module")
def train(make_phantom_set, tmp_path_factory):
    """Five distinct subjects plus the first two subjects that `generate --seed 5` makes, under hospital-style names
    (generated ids derive from the seed, so the copies must not keep theirs for the no-training-names check to mean anything)."""
    folder = tmp_path_factory.mktemp("gate") / "train"
    sources = (make_phantom_set(n=5, seed=0, **GRID), make_phantom_set(n=2, seed=5, **GRID))
    cases = [case for source in sources for case in sorted(p for p in source.iterdir() if p.is_dir())]
    for number, case in enumerate(cases):
        name = f"Hospital_{number:03d}"
        (folder / name).mkdir(parents=True)
        for path in case.iterdir():
            shutil.copy(path, folder / name / path.name.replace(case.name, name))
    return folder


def test_flagged_cases_are_left_out_and_the_audit_is_in_the_manifest(train, tmp_path, registry):
    out = tmp_path / "set"
    request = GenerateRequest(model="phantom", n=3, seed=5, out=out, device="cpu", audit_against=train, **{
        "shape": GRID["shape"], "spacing": (GRID["spacing"],) * 3})
    assert generate_set(request, registry) == out
    manifest = json.loads((out / "manifest.json").read_text())
    assert [c["seed"] for c in manifest["cases"]] == [case_seed(5, 2)]
    kept = manifest["cases"][0]["id"]
    assert sorted(p.name for p in out.iterdir()) == sorted([kept, "manifest.json"])
    audit = manifest["audit"]
    assert audit["threshold"] == 0.5 and audit["n_synthetic"] == 3 and audit["n_flagged"] == 2 and audit["dimensions"] == 3
    assert len(audit["left_out"]) == 2 and kept not in audit["left_out"]
    assert {c["case"] for c in audit["cases"] if c["flagged"]} == set(audit["left_out"])
    assert all(c["score"] > 0.99 for c in audit["cases"] if c["flagged"])
    text = (out / "manifest.json").read_text()
    assert "nearest_training_case" not in text and str(train) not in text
    assert not any(case.name in text for case in train.iterdir())
    assert not list(tmp_path.glob(".set.*"))  # no staging folder left behind


def test_cli_nnunet_set_drops_flagged_cases_from_dataset_json(train, tmp_path, capsys):
    out = tmp_path / "nn"
    assert main(["generate", "-n", "3", "--seed", "5", "--layout", "nnunet", "--out", str(out), "--audit-against", str(train), *SMALL]) == 0
    dataset = json.loads((out / "dataset.json").read_text())
    manifest = json.loads((out / "manifest.json").read_text())
    assert dataset["numTraining"] == 1 and len(dataset["training"]) == 1 and len(manifest["cases"]) == 1
    assert len(list((out / "imagesTr").iterdir())) == 4 and len(list((out / "labelsTr").iterdir())) == 1
    assert dataset["training"][0]["label"] == manifest["cases"][0]["files"]["seg"]
    assert "Wrote" not in capsys.readouterr().out  # --quiet prints the folder only


def test_a_resumed_run_audits_the_whole_set_before_publishing(train, tmp_path, registry):
    out = tmp_path / "resumed"
    request = GenerateRequest(model="phantom", n=3, seed=5, out=out, device="cpu", audit_against=train, **{
        "shape": GRID["shape"], "spacing": (GRID["spacing"],) * 3})

    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_set(request, registry, progress=stop_after_two)
    assert not out.exists(), "nothing is published before the audit"
    kept = []
    generate_set(replace(request, resume=True), registry, resumed=lambda done, total: kept.append(done))
    assert kept == [2]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [c["seed"] for c in manifest["cases"]] == [case_seed(5, 2)]
    assert manifest["audit"]["n_synthetic"] == 3 and manifest["audit"]["n_flagged"] == 2, "the cases made before the stop were audited"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resumed"]


def test_all_flagged_writes_nothing(train, tmp_path, registry):
    out = tmp_path / "all"
    request = GenerateRequest(model="phantom", n=2, seed=5, out=out, device="cpu", audit_against=train, **{
        "shape": GRID["shape"], "spacing": (GRID["spacing"],) * 3})
    with pytest.raises(MedSynthError, match="All 2 generated case"):
        generate_set(request, registry)
    assert not out.exists() and not list(tmp_path.iterdir())


def test_bad_training_folder_fails_before_generating(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    out = tmp_path / "set"
    assert main(["generate", "-n", "1", "--out", str(out), "--audit-against", str(empty), *SMALL]) == 2
    err = capsys.readouterr().err
    assert "training folder" in err and "is empty" in err and not out.exists()
    assert main(["generate", "-n", "1", "--out", str(out), "--audit-against", str(empty), "--audit-threshold", "0", *SMALL]) == 2
    assert "audit threshold" in capsys.readouterr().err
    engine = ["--engine", "http://127.0.0.1:9", "--audit-against", str(empty)]
    assert main(["generate", "-n", "1", "--out", str(out), *engine, *SMALL]) == 2
    assert "runs in this process only" in capsys.readouterr().err  # never silently skipped


def test_export_gate_leaves_copies_out_of_an_exported_set(train, make_phantom_set, tmp_path, capsys):
    """`medsynth export --audit-against` (the panel's export): the same gate on re-writing an existing set."""
    source = make_phantom_set(n=3, seed=5, **GRID)
    out = tmp_path / "shared"
    assert main(["export", "--source", str(source), "--out", str(out), "--layout", "nnunet", "--audit-against", str(train), "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [c["seed"] for c in manifest["cases"]] == [case_seed(5, 2)]
    assert manifest["audit"]["n_flagged"] == 2 and len(manifest["audit"]["left_out"]) == 2
    assert json.loads((out / "dataset.json").read_text())["numTraining"] == 1
    text = (out / "manifest.json").read_text()
    assert str(train) not in text and not any(case.name in text for case in train.iterdir())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared"]  # no staging folder left behind
    capsys.readouterr()
    everything = tmp_path / "everything"
    first_two = make_phantom_set(n=2, seed=5, **GRID)
    assert main(["export", "--source", str(first_two), "--out", str(everything), "--audit-against", str(train)]) == 2
    assert "All 2 exported case(s) were flagged" in capsys.readouterr().err
    assert not everything.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["shared"]


def test_the_gate_audits_a_2d_set_slice_by_slice(train, make_phantom_set, tmp_path):
    """A 2D set (single-slice cases) goes to the 2D audit, against every head slice of the 3D training cases: a copy
    of one training slice is left out, another subject's slice is kept. (The 3D audit would compare a slice with
    whole volumes and see no copy.)"""
    source = tmp_path / "slices"
    donors = {"copy": (train / "Hospital_001", 15), "fresh": (sorted(p for p in make_phantom_set(n=1, seed=1, **GRID).iterdir() if p.is_dir())[0], 16)}
    channels = ("t1", "t1ce", "t2", "flair", "seg")
    for name, (case, k) in donors.items():
        (source / name).mkdir(parents=True)
        for c in channels:
            array, affine = read_nifti(case / f"{case.name}_{c}.nii.gz")
            write_nifti(source / name / f"{name}_{c}.nii.gz", array[:, :, k : k + 1], affine)
    cases = [{"id": name, "seed": seed, "files": {c: f"{name}/{name}_{c}.nii.gz" for c in channels}} for seed, name in enumerate(donors, 1)]
    manifest = {"format": "medsynth-synthetic-set", "layout": "brats", "channels": list(channels), "cases": cases}
    (source / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "shared"
    assert main(["export", "--source", str(source), "--out", str(out), "--audit-against", str(train), "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    audit = manifest["audit"]
    assert audit["dimensions"] == 2 and audit["n_training_cases"] == 7 and audit["n_training"] > 7  # training slices
    assert len(manifest["cases"]) == 1 and len(audit["left_out"]) == 1 and audit["n_synthetic"] == 2
    assert max(c["score"] for c in audit["cases"]) > 0.99 and min(c["score"] for c in audit["cases"]) < 0.5
    text = (out / "manifest.json").read_text()
    assert "nearest_training" not in text and not any(case.name in text for case in train.iterdir())
