"""`medsynth evaluate`: metrics.json keys, a self-contained report, distances that are 0 for identical sets and
grow when the synthetic set differs, MS-SSIM that exposes mode collapse, deterministic TSTR, clear errors."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from medsynth_engine.cli import main
from medsynth_engine.evaluate.distances import frechet_distance, mmd, standardise
from medsynth_engine.evaluate.tstr import dice_per_label

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

GRID = {"shape": (24, 24, 24), "spacing": 10.0}  # 240 mm field of view, like BraTS
TINY = ["--grid", "24", "--tstr-steps", "2", "--tstr-grid", "16", "--tstr-spacing", "12", "--tstr-patch", "16", "--tstr-seeds", "1", "--quiet"]
KEYS = {"ms_ssim_synthetic", "ms_ssim_real", "mmd", "frechet_distance", "memorised_fraction"}
TSTR_KEYS = {"dice_synthetic", "dice_real", "dice_ratio", "dice_real_plus_synthetic"}


def _evaluate(synthetic, real, out, *extra: str) -> dict:
    assert main(["evaluate", "--synthetic", str(synthetic), "--real", str(real), "--out", str(out), *TINY, *extra]) == 0
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def real(make_phantom_set):
    return make_phantom_set(n=4, seed=0, **GRID)


@pytest.fixture(scope="module")
def identical(real, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "identical"
    return out, _evaluate(real, real, out, "--tstr")


def test_identical_sets_give_zero_distances_and_a_dice_ratio_of_one(identical):
    _, metrics = identical
    assert KEYS | TSTR_KEYS <= set(metrics)
    assert metrics["mmd"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["frechet_distance"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["ms_ssim_synthetic"] == metrics["ms_ssim_real"]
    assert 0.0 < metrics["ms_ssim_real"] < 1.0
    # Same cases, same seed, same steps: the two models are the same model.
    assert metrics["dice_synthetic"] == metrics["dice_real"]
    assert metrics["dice_ratio"] == 1.0 or (metrics["dice_real"]["mean"] == 0 and metrics["dice_ratio"] is None)
    assert set(metrics["dice_real"]) == {"NCR", "ED", "ET", "WT", "TC", "mean"}
    assert metrics["dice_ratio_ci"] == [1.0, 1.0]  # paired resamples of two identical models
    # 4 real cases: 1 held out, 1 for model A, 1 for the independent control model B.
    assert metrics["tstr"]["n_test"] == 1 and metrics["tstr"]["n_train"] == 1 and metrics["tstr"]["steps"] == 2
    assert metrics["tstr"]["segmenter"] == "unet" and set(metrics["dice_ci"]) == {"real", "control", "synthetic", "real_plus_synthetic"}
    # Identical sets: every synthetic case sits on its real twin (k = 3 with 4 cases, so each ball also holds its centre).
    assert (metrics["precision"], metrics["recall"], metrics["coverage"]) == (1.0, 1.0, 1.0)
    assert metrics["density"] == pytest.approx(4 / 3)
    assert set(metrics["prdc"]["control"]) == {"precision", "recall", "density", "coverage"}
    assert metrics["tumour_statistics"]["synthetic"] == metrics["tumour_statistics"]["real"]
    assert metrics["tumour_statistics"]["synthetic_vs_real"]["whole"]["presence_ratio"] == 1.0
    assert metrics["memorised_fraction"] == 1.0  # a set compared with itself is all copies


def test_report_is_self_contained_html_with_the_figures(identical):
    out, metrics = identical
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["histograms.png", "mosaic.png", "tumour_volumes.png"]
    for png in (out / "figures").iterdir():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = (out / "report.html").read_text()
    assert html.count('src="data:image/png;base64,') == 3
    assert not re.search(r'(src|href)="(?!data:)', html)  # nothing fetched from anywhere
    for word in ("Fréchet Radiomics Distance", "MS-SSIM", "Memorisation audit", "held-out real", "dice_ratio", "control ratio", "coverage", "presence rate"):
        assert word in html
    assert "nearest_training_case" not in json.dumps(metrics)  # real case names stay out of the report


def test_distances_grow_when_the_synthetic_set_differs(real, make_phantom_set, tmp_path):
    other = _evaluate(make_phantom_set(n=4, seed=1, **GRID), real, tmp_path / "other")
    healthy = _evaluate(make_phantom_set(n=4, seed=1, tumour=False, **GRID), real, tmp_path / "healthy")
    assert other["memorised_fraction"] == 0.0 and not TSTR_KEYS & set(other)
    assert other["mmd"] > 0.01 and other["frechet_distance"] > 0.01
    # Brains without tumours are further from the real (tumour) set than other brains with tumours.
    assert healthy["frechet_distance"] > other["frechet_distance"]
    assert healthy["mmd"] > other["mmd"]
    tumour_features = {"whole_tumour_fraction", "NCR_share", "ED_share", "ET_share", "tumour_offcentre", "tumour_surface_ratio"}
    assert tumour_features & set(healthy["features"]["largest_differences"])


def test_mode_collapse_shows_as_high_synthetic_ms_ssim(real, tmp_path):
    collapsed = tmp_path / "collapsed"
    case = sorted(p for p in real.iterdir() if p.is_dir())[0]
    for i in range(3):
        dest = collapsed / f"copy{i}"
        dest.mkdir(parents=True)
        for f in case.iterdir():
            shutil.copy(f, dest / f.name.replace(case.name, f"copy{i}"))
    metrics = _evaluate(collapsed, real, tmp_path / "report")
    assert metrics["ms_ssim_synthetic"] == pytest.approx(1.0, abs=1e-4)
    assert metrics["ms_ssim_real"] < 0.9
    assert metrics["memorised_fraction"] == 1.0
    # Collapse costs diversity, not fidelity: the copies are real, but they reach only one of the 4 real cases.
    assert metrics["precision"] == 1.0 and metrics["recall"] == 0.25


def _error(capsys, *args: str) -> str:
    assert main(["evaluate", *args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medsynth: error: ") and "\n" not in err
    return err


def test_bad_inputs_are_one_sentence_and_write_nothing(real, make_phantom_set, tmp_path, capsys):
    out = tmp_path / "out"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "is empty" in _error(capsys, "--synthetic", str(empty), "--real", str(real), "--out", str(out))
    t1_only = make_phantom_set(n=2, seed=3, channels="t1,seg", **GRID)
    assert "channels differ" in _error(capsys, "--synthetic", str(t1_only), "--real", str(real), "--out", str(out))
    no_labels = make_phantom_set(n=2, seed=3, channels="t1,t1ce,t2,flair", **GRID)
    assert "--tstr needs tumour labels" in _error(capsys, "--synthetic", str(no_labels), "--real", str(real), "--out", str(out), "--tstr")
    broken = tmp_path / "broken"
    shutil.copytree(real, broken)
    victim = next(broken.glob("*/*_t2.nii.gz"))
    victim.write_bytes(b"\x1f\x8b garbage")
    err = _error(capsys, "--synthetic", str(broken), "--real", str(real), "--out", str(out))
    assert victim.name in err
    assert "grid" in _error(capsys, "--synthetic", str(real), "--real", str(real), "--out", str(out), "--grid", "8")
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("x")
    assert "not empty" in _error(capsys, "--synthetic", str(real), "--real", str(real), "--out", str(full))
    assert [p.name for p in full.iterdir()] == ["keep.txt"]


def test_distances_on_known_distributions():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 3))
    y = rng.normal(size=(4000, 3)) + np.array([2.0, 0.0, 0.0])
    assert frechet_distance(x, y) == pytest.approx(4.0, rel=0.05)  # |mu|^2 for equal covariances
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-9)
    assert mmd(x[:300], x[:300])[0] == pytest.approx(0.0, abs=1e-7)
    assert mmd(x[:300], y[:300])[0] > 5 * mmd(x[:300], x[300:600])[0]
    real, synthetic = standardise(np.array([[0.0, 5.0], [2.0, 5.0]]), np.array([[4.0, 6.0]]))
    assert real.tolist() == [[-1.0, 0.0], [1.0, 0.0]] and synthetic.tolist() == [[3.0, 1.0]]


def test_dice_follows_the_brats_conventions():
    truth = np.zeros((4, 4, 4), dtype=np.uint8)
    truth[:2] = 2
    prediction = truth.copy()
    prediction[0] = 4
    scores = dice_per_label(prediction, truth)
    assert scores == {"NCR": 1.0, "ED": pytest.approx(2 * 16 / (16 + 32)), "ET": 0.0}


def test_a_set_missing_a_class_shows_in_the_tumour_statistics(real, tmp_path):
    import nibabel as nib

    no_necrosis = tmp_path / "no_necrosis"
    shutil.copytree(real, no_necrosis)
    for seg_file in no_necrosis.glob("*/*_seg.nii.gz"):
        image = nib.load(seg_file)
        labels = np.asarray(image.dataobj)
        nib.save(nib.Nifti1Image(np.where(labels == 1, 2, labels).astype(labels.dtype), image.affine, image.header), seg_file)
    stats = _evaluate(no_necrosis, real, tmp_path / "report")["tumour_statistics"]
    assert stats["real"]["NCR"]["presence_rate"] > 0
    assert stats["synthetic"]["NCR"] == {"presence_rate": 0.0, "volume_ml": None, "centroid_mm": None}
    assert stats["synthetic_vs_real"]["NCR"] == {"presence_ratio": 0.0, "median_volume_ratio": 0.0, "centroid_shift_mm": None}
    assert stats["synthetic"]["ET"] == stats["real"]["ET"] and stats["synthetic"]["whole"] == stats["real"]["whole"]
    assert stats["synthetic_vs_real"]["ED"]["median_volume_ratio"] > 1.0  # the necrosis became oedema


def test_a_model_is_sampled_evaluated_and_its_samples_removed(real, tmp_path):
    metrics = _evaluate_model("pgan3d-phantom", real, tmp_path / "report")
    assert metrics["n_synthetic"] == 3 and metrics["n_real"] == 4
    assert {"precision", "recall", "density", "coverage"} <= set(metrics)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # the scratch samples are gone


def _evaluate_model(model: str, real, out) -> dict:
    assert main(["evaluate", "--model", model, "-n", "3", "--real", str(real), "--out", str(out), *TINY]) == 0
    return json.loads((out / "metrics.json").read_text())


def test_a_cohort_set_shows_its_achieved_distribution_against_the_asked_one(real, tmp_path, capsys):
    from medsynth_engine.generate import GenerateRequest, generate_set
    from medsynth_engine.registry import default_registry

    cohort = {"strata": [{"name": "big-right", "count": 1, "tumour": {"volume_ml": [40, 120], "hemisphere": "right"}},
                         {"name": "healthy", "count": 1, "tumour": "none"}]}
    synthetic = generate_set(GenerateRequest(
        model="phantom", n=1, seed=4, out=tmp_path / "cohort", cohort=cohort, shape=GRID["shape"], spacing=(GRID["spacing"],) * 3
    ), default_registry())
    metrics = _evaluate(synthetic, real, tmp_path / "eval")
    rows = {r["name"]: r for r in metrics["cohort"]["strata"]}
    assert (rows["big-right"]["asked"], rows["big-right"]["written"], rows["big-right"]["met"]) == (1, 1, 1)
    assert rows["big-right"]["hemisphere"] == {"right": 1} and 40 <= rows["big-right"]["volume_ml"]["min"] <= rows["big-right"]["volume_ml"]["max"] <= 120
    assert (rows["healthy"]["asked"], rows["healthy"]["written"]) == (1, 1)
    printed = capsys.readouterr().out
    assert "big-right: 1/1, met 1;" in printed and "healthy: 1/1, met 1;" in printed
    assert "Cohort: asked against achieved" in (tmp_path / "eval" / "report.html").read_text()
