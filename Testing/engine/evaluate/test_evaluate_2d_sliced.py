"""2D synthetic slices against a 3D real set: the real volumes are cut as the 2D training cuts them (so the training
slices themselves, as a perfect model would give them back, compare at distance 0), the report says how, TSTR keeps
each subject on one side of its split, a 2D set's manifest can name the subjects, and --slices-per-case is checked."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from medsynth_engine.cli import main
from medsynth_engine.data.preprocess import PreprocessSpec
from medsynth_engine.evaluate.sets import open_set, read_case
from medsynth_engine.models.slices2d.slices import slice_case
from medsynth_engine.nifti_io import write_nifti

pytestmark = pytest.mark.slow  # rendered sets and training steps: make test-fast leaves it out

VOLUMES = {"n": 4, "shape": (32, 32, 32), "spacing": 6.0}
TINY = ["--grid", "32", "--tstr-steps", "1", "--tstr-grid", "32", "--tstr-spacing", "6", "--tstr-patch", "16", "--tstr-seeds", "1", "--quiet"]
CHANNELS = ("t1", "t1ce", "t2", "flair", "seg")
PER_CASE = 2


@pytest.fixture(scope="module")
def volumes(make_phantom_set):
    return make_phantom_set(seed=0, **VOLUMES)


@pytest.fixture(scope="module")
def training_slices(volumes, tmp_path_factory):
    """What a 2D model that learnt its training slices perfectly would write: each volume's ``PER_CASE`` training
    slices (the 2D families' own slicer at 32x32, 6 mm), on the case's intensity scale, as (X, Y, 1) NIfTI files."""
    out = tmp_path_factory.mktemp("sliced") / "synthetic"
    spec = PreprocessSpec(shape=(32, 32, 32), spacing=(6.0, 6.0, 6.0))
    for case in open_set(volumes, "real").cases:
        loaded = read_case(case, CHANNELS)
        images, labels, scale = slice_case(loaded.arrays, loaded.affine, spec, PER_CASE)
        for k in range(len(images)):
            name = f"{case.id}x{k}"
            (out / name).mkdir(parents=True)
            for i, c in enumerate(CHANNELS[:-1]):
                low, high = scale[c]
                write_nifti(out / name / f"{name}_{c}.nii.gz", ((images[k, i] + 1) / 2 * (high - low) + low)[..., None], np.diag([6.0] * 3 + [1.0]))
            write_nifti(out / name / f"{name}_seg.nii.gz", labels[k][..., None], np.diag([6.0] * 3 + [1.0]))
    return out


def _evaluate(out: Path, *args: str) -> dict:
    assert main(["evaluate", *args, "--out", str(out), *TINY]) == 0
    return json.loads((out / "metrics.json").read_text())


def test_a_3d_real_set_is_sliced_as_the_training_slices_it(training_slices, volumes, tmp_path):
    metrics = _evaluate(tmp_path / "r", "--synthetic", str(training_slices), "--real", str(volumes), "--slices-per-case", str(PER_CASE), "--tstr")
    assert metrics["spatial_dims"] == 2 and metrics["n_real"] == metrics["n_synthetic"] == 4 * PER_CASE
    assert metrics["real_slicing"] == {
        "from": "3D volumes", "cases": 4, "slices": 4 * PER_CASE, "slices_per_case": PER_CASE, "axis": "axial",
        "selection": "per case the axial slices with the most head plus tumour voxels, as the 2D training takes them",
        "grid": {"shape": [32, 32, 32], "spacing": [6.0, 6.0, 6.0]},
    }
    # the same slices on both sides: like is compared with like
    assert metrics["mmd"] == pytest.approx(0.0, abs=1e-4) and metrics["frechet_distance"] == pytest.approx(0.0, abs=1e-3)
    assert (metrics["precision"], metrics["recall"], metrics["coverage"]) == (1.0, 1.0, 1.0)
    assert metrics["ms_ssim_synthetic"] == pytest.approx(metrics["ms_ssim_real"], abs=1e-4)
    assert metrics["tumour_area_mm2"]["whole"]["synthetic_mean"] == pytest.approx(metrics["tumour_area_mm2"]["whole"]["real_mean"])
    # the slice audit, against every head slice of the real volumes: each synthetic slice is one of them
    assert metrics["audit"]["dimensions"] == 2 and metrics["audit"]["n_training_cases"] == 4 and metrics["memorised_fraction"] == 1.0
    # TSTR: 4 subjects, 1 held out (its 2 slices), A and B one subject (2 slices) each
    tstr = metrics["tstr"]
    assert (tstr["split"], tstr["subjects"], tstr["test_subjects"], tstr["n_test"], tstr["n_train"]) == ("by subject", 4, 1, 2, 2)
    assert tstr["subject_of_a_slice"] == "the 3D real case it was cut from"
    assert "3D case(s) were sliced into 8 axial slices" in (tmp_path / "r" / "report.html").read_text()


def test_a_2d_set_names_its_subjects_in_its_manifest(training_slices, tmp_path):
    named = tmp_path / "named"
    shutil.copytree(training_slices, named)
    cases = sorted(p.name for p in named.iterdir() if p.is_dir())
    (named / "manifest.json").write_text(json.dumps({"cases": [{"id": c, "subject": c.split("x")[0]} for c in cases]}))
    metrics = _evaluate(tmp_path / "r", "--synthetic", str(training_slices), "--real", str(named), "--tstr")
    assert (metrics["tstr"]["split"], metrics["tstr"]["subjects"], metrics["tstr"]["n_test"]) == ("by subject", 4, PER_CASE)
    assert metrics["tstr"]["subject_of_a_slice"] == "the subject the real set's manifest.json records for it"
    assert "real_slicing" not in metrics


def test_a_bad_slices_per_case_is_refused_before_anything_runs(training_slices, volumes, tmp_path, capsys):
    for value in ("0", "-2"):
        args = ["evaluate", "--synthetic", str(training_slices), "--real", str(volumes), "--out", str(tmp_path / "o"), "--slices-per-case", value]
        assert main([*args, "--quiet"]) == 2
        assert capsys.readouterr().err.strip() == f"medsynth: error: --slices-per-case must be a positive whole number, not {value}."
        args = ["evaluate", "--model", "dcgan2d", "--real", str(volumes), "--out", str(tmp_path / "o"), "--slices-per-case", value]
        assert main([*args, "--quiet"]) == 2 and "--slices-per-case must be a positive" in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o*"))


def test_the_default_is_the_training_default():
    from medsynth_engine.evaluate.run import EvaluateRequest
    from medsynth_engine.registry import default_registry

    for family in ("dcgan2d", "stylegan2d"):
        default = {s.name: s.default for s in default_registry().family_for(family).options()}["slices_per_case"]
        assert EvaluateRequest(Path("s"), Path("r"), Path("o")).slices_per_case == default == 48  # as training took them before
