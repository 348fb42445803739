"""`medsynth evaluate` on 2D sets (single-slice NIfTI, as dcgan2d and stylegan2d write them), at 32x32 with a few
steps: the 3D keys plus spatial_dims, exact answers for identical sets, a missing class and a collapsed set, the 2D
segmenters, a sampled 2D model against 3D cases, and clear refusals (Testing/engine/evaluate/test_evaluate_2d_sliced.py:
3D real sets against slices in detail)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from medsynth_engine.cli import main
from medsynth_engine.nifti_io import write_nifti

pytestmark = pytest.mark.slow  # rendered sets and training steps: make test-fast leaves it out

VOLUMES = {"n": 4, "shape": (32, 32, 32), "spacing": 6.0}  # 192 mm field of view; 32x32 slices
TINY = ["--grid", "32", "--tstr-steps", "2", "--tstr-grid", "32", "--tstr-spacing", "6", "--tstr-patch", "16", "--tstr-seeds", "1", "--quiet"]
CHANNELS = ("t1", "t1ce", "t2", "flair", "seg")


def slice_set(volumes: Path, out: Path, per_case: int = 3) -> Path:
    """A 2D set from a phantom set: each case's ``per_case`` axial slices with the most tumour, one case per slice."""
    for case in sorted(p for p in volumes.iterdir() if p.is_dir()):
        images = {c: nib.load(case / f"{case.name}_{c}.nii.gz") for c in CHANNELS}
        arrays = {c: np.asarray(image.dataobj) for c, image in images.items()}
        affine = images["t1"].affine
        for k, z in enumerate(sorted(np.argsort(-(arrays["seg"] > 0).sum(axis=(0, 1)), kind="stable")[:per_case])):
            name = f"{case.name}s{k}"
            (out / name).mkdir(parents=True)
            shifted = affine.copy()
            shifted[:3, 3] += affine[:3, 2] * z  # the slice where it lies in the volume
            for c, array in arrays.items():
                write_nifti(out / name / f"{name}_{c}.nii.gz", array[:, :, z : z + 1], shifted)
    return out


def _evaluate(synthetic, real, out, *extra: str) -> dict:
    assert main(["evaluate", "--synthetic", str(synthetic), "--real", str(real), "--out", str(out), *TINY, *extra]) == 0
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def volumes(make_phantom_set):
    return make_phantom_set(seed=0, **VOLUMES)


@pytest.fixture(scope="module")
def real(volumes, tmp_path_factory):
    return slice_set(volumes, tmp_path_factory.mktemp("slices") / "real")


def test_identical_slice_sets_give_the_exact_answers(real, tmp_path):
    metrics = _evaluate(real, real, tmp_path / "report", "--tstr")
    assert metrics["spatial_dims"] == 2 and metrics["grid"]["shape"] == [32, 32] and metrics["n_real"] == 12
    assert metrics["mmd"] == pytest.approx(0.0, abs=1e-6) and metrics["frechet_distance"] == pytest.approx(0.0, abs=1e-6)
    assert metrics["ms_ssim_synthetic"] == metrics["ms_ssim_real"] and 0.0 < metrics["ms_ssim_real"] < 1.0
    # TSTR, the 2D study's protocol: train on slices, test on held-out real slices; the same slices train the same model.
    assert metrics["dice_synthetic"] == metrics["dice_real"] and set(metrics["dice_real"]) == {"NCR", "ED", "ET", "WT", "TC", "mean"}
    assert metrics["dice_ratio_ci"] == [1.0, 1.0] or metrics["dice_real"]["mean"] == 0
    assert metrics["tstr"]["n_test"] == 3 and metrics["tstr"]["n_train"] == 4 and set(metrics["dice_ci"]) >= {"real", "control", "synthetic"}
    assert metrics["tstr"]["split"] == "by case" and metrics["tstr"]["subject_of_a_slice"].startswith("not recorded")  # no manifest
    assert "DynUNet" in metrics["tstr"]["network"] and "16^2 patches" in metrics["tstr"]["network"]
    assert (metrics["precision"], metrics["recall"], metrics["coverage"]) == (1.0, 1.0, 1.0)
    assert metrics["density"] == pytest.approx(6 / 5) and "slab" in metrics["prdc"]["features"]
    stats = metrics["tumour_statistics"]
    assert stats["synthetic"] == stats["real"] and stats["real"]["whole"]["presence_rate"] == 1.0
    assert stats["real"]["ED"]["area_mm2"]["median"] > 0 and "volume_ml" not in stats["real"]["ED"]
    assert stats["synthetic_vs_real"]["ED"]["median_area_ratio"] == 1.0
    assert metrics["tumour_area_mm2"]["whole"]["synthetic_mean"] == metrics["tumour_area_mm2"]["whole"]["real_mean"] > 0
    assert metrics["memorised_fraction"] == 1.0
    html = (tmp_path / "report" / "report.html").read_text()
    assert "median area mm^2" in html and html.count('src="data:image/png;base64,') == 3 and not re.search(r'(src|href)="(?!data:)', html)


def test_a_slice_set_missing_a_class_shows_in_the_statistics(real, tmp_path):
    no_necrosis = tmp_path / "no_necrosis"
    shutil.copytree(real, no_necrosis)
    for seg_file in no_necrosis.glob("*/*_seg.nii.gz"):
        image = nib.load(seg_file)
        labels = np.asarray(image.dataobj)
        write_nifti(seg_file, np.where(labels == 1, 2, labels).astype(labels.dtype), image.affine)
    stats = _evaluate(no_necrosis, real, tmp_path / "report")["tumour_statistics"]
    assert stats["real"]["NCR"]["presence_rate"] > 0
    assert stats["synthetic"]["NCR"] == {"presence_rate": 0.0, "area_mm2": None, "centroid_mm": None}
    assert stats["synthetic_vs_real"]["NCR"] == {"presence_ratio": 0.0, "median_area_ratio": 0.0, "centroid_shift_mm": None}
    assert stats["synthetic"]["whole"] == stats["real"]["whole"] and stats["synthetic_vs_real"]["ED"]["median_area_ratio"] > 1.0


def test_collapse_shows_as_high_ms_ssim_and_low_recall(real, tmp_path):
    collapsed = tmp_path / "collapsed"
    case = sorted(p for p in real.iterdir() if p.is_dir())[0]
    for i in range(4):
        (collapsed / f"copy{i}").mkdir(parents=True)
        for f in case.iterdir():
            shutil.copy(f, collapsed / f"copy{i}" / f.name.replace(case.name, f"copy{i}"))
    metrics = _evaluate(collapsed, real, tmp_path / "report")
    assert metrics["ms_ssim_synthetic"] == pytest.approx(1.0, abs=1e-4) and metrics["ms_ssim_real"] < 0.9
    assert metrics["precision"] == 1.0 and metrics["recall"] == pytest.approx(1 / 12)  # real, but only one of 12 real slices
    assert metrics["memorised_fraction"] == 1.0


def test_volumes_against_slices_are_refused_in_one_sentence(real, volumes, tmp_path, capsys):
    assert main(["evaluate", "--synthetic", str(volumes), "--real", str(real), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medsynth: error: The synthetic set") and "\n" not in err
    assert "holds 3D volumes but the real set" in err and "2D slices (single-slice NIfTI)" in err
    assert not (tmp_path / "out").exists()
    mixed = tmp_path / "mixed"
    shutil.copytree(real, mixed)
    intruder = sorted(p for p in volumes.iterdir() if p.is_dir())[0]
    shutil.copytree(intruder, mixed / "zz" / intruder.name)
    for f in (mixed / "zz" / intruder.name).iterdir():
        f.rename(mixed / "zz" / f.name.replace(intruder.name, "zz"))
    (mixed / "zz" / intruder.name).rmdir()
    assert main(["evaluate", "--synthetic", str(mixed), "--real", str(real), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "zz_" in err and "holds a volume of 32x32x32 voxels" in err and "\n" not in err


def test_the_2d_segmenters():
    from medsynth_engine.evaluate.tstr import TstrSettings, run_tstr

    rng = np.random.default_rng(0)
    for segmenter, side, patch, network in (("swinunetr", 64, 64, "SwinUNETR"), ("unet", 32, 16, "DynUNet")):  # SwinUNETR: 64 at least
        images = rng.normal(scale=0.3, size=(4, 2, side, side)).astype(np.float32)
        labels = np.zeros((4, side, side), dtype=np.uint8)
        labels[:, 10:20, 12:22], labels[:, 13:17, 15:19] = 2, 4
        images[:, 0][labels > 0] += 1.5
        result = run_tstr((images, labels), (images, labels), TstrSettings(steps=2, batch_size=2, patch=patch, segmenter=segmenter, seeds=1))
        assert network in result["tstr"]["network"] and f"{patch}^2 patches" in result["tstr"]["network"]
        assert result["dice_synthetic"] == result["dice_real"] and result["tstr"]["grid"] == side


def test_a_2d_model_is_sampled_and_evaluated(volumes, tmp_path):
    from medsynth_engine.training.finetune import FinetuneRequest, run_finetune

    model = run_finetune(FinetuneRequest.make(
        data=volumes, out=tmp_path / "m", steps=1, model="dcgan2d", resolution=32, width=16, batch_size=4, seed=5, slices_per_case=3, spacing=6.0
    ))
    out = tmp_path / "report"
    # against the 3D cases it learnt from, sliced as its training sliced them; as many samples as real slices
    assert main(["evaluate", "--model", str(model), "--real", str(volumes), "--slices-per-case", "1", "--out", str(out), *TINY]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["spatial_dims"] == 2 and metrics["n_synthetic"] == metrics["n_real"] == 4 and metrics["grid"]["shape"] == [32, 32]
    assert metrics["real_slicing"]["slices_per_case"] == 1 and metrics["audit"]["dimensions"] == 2
    assert {"precision", "recall", "density", "coverage", "tumour_statistics"} <= set(metrics)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "report"]  # the sampled slices are gone
