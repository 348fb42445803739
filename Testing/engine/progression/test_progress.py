"""medsynth progress on real phantom cases: growth grows monotonically (its fronts √5 times faster in white matter),
atrophy's
regional Jacobians match the prescription, voxels outside the changed region are bit-identical, bad input is refused."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from medsynth_engine.errors import MedSynthError
from medsynth_engine.generate import GenerateRequest, generate_set
from medsynth_engine.progression.case import GM, WM
from medsynth_engine.progression.growth import GrowthParams, grow
from medsynth_engine.progression.series import ProgressRequest, run_progress
from scipy import ndimage

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

MEDSYNTH_BIN = Path(sys.executable).parent / "medsynth"
CHANNELS = ("t1", "t1ce", "t2", "flair")


@pytest.fixture(scope="module")
def cases(tmp_path_factory, registry) -> dict[str, Path]:
    """One case with a small enhancing tumour and one healthy case, made as a cohort (4 mm, to stay quick)."""
    cohort = {"strata": [{"name": "small", "count": 1, "tumour": {"volume_ml": [6, 15], "enhancing": True}}, {"name": "healthy", "count": 1, "tumour": "none"}]}
    out = generate_set(
        GenerateRequest(model="phantom", n=1, seed=11, out=tmp_path_factory.mktemp("progress") / "set", shape=(44, 52, 44), spacing=(4.0, 4.0, 4.0), cohort=cohort),
        registry,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    return {c["stratum"]: out / c["id"] for c in manifest["cases"]}


def _read(folder: Path) -> dict[str, np.ndarray]:
    return {p.name.rsplit("_", 1)[1].split(".")[0]: np.asanyarray(nib.load(str(p)).dataobj) for p in folder.glob("*.nii.gz")}


def test_the_front_moves_faster_in_white_than_in_grey_matter():
    """Fisher-Kolmogorov fronts travel at 2 sqrt(D rho): a seed on a white/grey boundary spreads sqrt(5) times farther into white."""
    shape = (100, 9, 9)
    classes = np.full(shape, GM, np.uint8)
    classes[50:] = WM
    seg = np.zeros(shape, np.uint8)
    seg[48:52, 3:6, 3:6] = 4
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    params = GrowthParams(d_grey_mm2_per_day=0.01, rho_per_day=0.05, solver_mm=1.0)
    torch.set_num_threads(1)
    early, late = grow(seg, classes, affine, [6.0, 12.0], params)
    profile = [state["c"][:, 4, 4] for state in (early, late)]
    # Where the 0.16 contour is along the axis, on each side of the seed, at both times: the speed is the slope.
    def front(c: np.ndarray, side: int) -> float:
        idx = np.arange(len(c))
        mask = (c >= 0.16) & ((idx >= 50) if side > 0 else (idx < 50))
        return float(idx[mask].max() if side > 0 else -idx[mask].min())

    white = front(profile[1], 1) - front(profile[0], 1)
    grey = front(profile[1], -1) - front(profile[0], -1)
    assert front(profile[1], 1) < 99 and -front(profile[1], -1) > 0 and grey > 0 and white / grey == pytest.approx(np.sqrt(5.0), rel=0.25), (white, grey)


@pytest.mark.slow
def test_growth_series_grows_monotonically_and_changes_nothing_far_from_the_tumour(cases, tmp_path):
    case = cases["small"]
    out = run_progress(ProgressRequest(case=case, model="growth", months=[0, 3, 6, 12], out=tmp_path / "series"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"] == "growth" and manifest["parameters"]["growth"]["rho_per_day"] == 0.012
    assert manifest["parameters"]["renderer"] == "contrast"  # a case of a phantom set: the phantom's contrast model
    assert [tp["month"] for tp in manifest["time_points"]] == [0, 3, 6, 12]
    original = _read(case)
    series = [_read(out / tp["case"]) for tp in manifest["time_points"]]
    for channel in (*CHANNELS, "seg"):
        np.testing.assert_array_equal(series[0][channel], original[channel])  # month 0 is the case itself
    volumes = [np.count_nonzero(s["seg"]) for s in series]
    assert all(b > a for a, b in zip(volumes, volumes[1:], strict=False)), volumes
    assert [tp["volumes"]["whole_ml"] for tp in manifest["time_points"]] == pytest.approx([v * 0.064 for v in volumes], abs=1e-3)
    spacing = np.array([4.0, 4.0, 4.0])
    for tp, arrays in zip(manifest["time_points"][1:], series[1:], strict=True):
        far = ndimage.distance_transform_edt(arrays["seg"] == 0, sampling=spacing) > tp["changed_within_mm_of_tumour"]
        for channel in CHANNELS:
            np.testing.assert_array_equal(arrays[channel][far], original[channel][far])
        changed = np.zeros(far.shape, bool)
        for channel in CHANNELS:
            changed |= arrays[channel] != original[channel]
        assert changed.any() and not (changed & far).any()


@pytest.mark.slow
def test_atrophy_meets_the_prescribed_regional_jacobian_and_leaves_the_rest_unchanged(cases, tmp_path):
    case = cases["healthy"]
    out = run_progress(ProgressRequest(case=case, model="atrophy", months=[0, 12], out=tmp_path / "series", profile="alzheimer"))
    manifest = json.loads((out / "manifest.json").read_text())
    rates = manifest["parameters"]["rates_percent_per_year"]
    assert rates == {"cortex": -2.5, "white_matter": -1.0, "ventricles": 8.0}
    point = manifest["time_points"][1]
    field_image = nib.load(str(out / point["files"]["field"]))
    assert field_image.shape[3:] == (1, 3) and field_image.header.get_intent()[0] == "vector"
    field = np.asarray(field_image.dataobj)[:, :, :, 0, :].astype(np.float64)
    regions = np.asarray(nib.load(str(out / "regions.nii.gz")).dataobj)
    spacing = np.linalg.norm(field_image.affine[:3, :3], axis=0)
    grad = np.stack([np.stack([np.gradient(field[..., i], spacing[j], axis=j) for j in range(3)], -1) for i in range(3)], -2)
    det = np.linalg.det(grad + np.eye(3))
    for name, code in (("cortex", 1), ("white_matter", 2), ("ventricles", 3)):
        prescribed = rates[name] / 100.0  # one year
        measured = det[regions == code].mean() - 1.0
        assert measured == pytest.approx(prescribed, rel=0.10), (name, measured, prescribed)
    original, follow = _read(case), _read(out / point["case"])
    still = ~ndimage.binary_dilation(np.any(field != 0, axis=-1))
    assert still.any() and np.any(field != 0)
    for channel in CHANNELS:
        np.testing.assert_array_equal(follow[channel][still], original[channel][still])
        assert np.any(follow[channel] != original[channel])


def test_bad_progress_requests_are_refused_in_one_sentence_and_nothing_is_written(cases, tmp_path):
    out = tmp_path / "series"
    with pytest.raises(MedSynthError, match="no tumour in its seg"):
        run_progress(ProgressRequest(case=cases["healthy"], model="growth", months=[0, 6], out=out))
    with pytest.raises(MedSynthError, match="increase with no repeats"):
        run_progress(ProgressRequest(case=cases["small"], model="growth", months=[6, 3], out=out))
    with pytest.raises(MedSynthError, match="Unknown atrophy region"):
        run_progress(ProgressRequest(case=cases["healthy"], model="atrophy", months=[6], out=out, rates={"hippocampus": -4.7}))
    assert not out.exists() and not list(tmp_path.glob(".series.partial-*"))
    result = subprocess.run(
        [str(MEDSYNTH_BIN), "progress", "--case", str(cases["small"]), "--model", "growth", "--months", "0,200", "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2 and "months must be 0 to 120" in result.stderr and "\n" not in result.stderr.strip()
    assert not out.exists()


@pytest.fixture(scope="module")
def scan(cases, tmp_path_factory) -> Path:
    """A hospital-style case: the tumour case's voxels in scanner units (float32, x 3.7), in a folder no set lists."""
    folder = tmp_path_factory.mktemp("hospital") / "patient07"
    folder.mkdir()
    for channel, array in _read(cases["small"]).items():
        affine = nib.load(str(next(cases["small"].glob(f"*_{channel}.nii.gz")))).affine
        data = array.astype(np.uint8) if channel == "seg" else array.astype(np.float32) * 3.7
        nib.save(nib.Nifti1Image(data, affine), str(folder / f"patient07_{channel}.nii.gz"))
    return folder


@pytest.mark.slow
def test_growth_on_a_real_scan_is_inpainted_by_the_add_tumour_model_and_changes_nothing_far_away(scan, tmp_path):
    out = run_progress(ProgressRequest(case=scan, model="growth", months=[0, 12], out=tmp_path / "series", steps=1, device="cpu"))
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"]["renderer"] == "inpaint" and manifest["parameters"]["tumour_model"] == {"id": "ldm3d-phantom", "steps": 1}
    original = _read(scan)
    series = [_read(out / tp["case"]) for tp in manifest["time_points"]]
    volumes = [np.count_nonzero(s["seg"]) for s in series]
    assert volumes[0] == np.count_nonzero(original["seg"]) < volumes[1], volumes
    for channel in (*CHANNELS, "seg"):
        np.testing.assert_array_equal(series[0][channel], original[channel])  # month 0 is the scan itself
    spacing = np.array([4.0, 4.0, 4.0])
    for arrays in series[1:]:
        tumour = arrays["seg"] > 0
        far = ndimage.distance_transform_edt(~tumour, sampling=spacing) >= 8.0  # the default margin
        new = tumour & (original["seg"] == 0)
        for channel in CHANNELS:
            assert arrays[channel].dtype == np.float32
            np.testing.assert_array_equal(arrays[channel][far], original[channel][far])  # bit-identical
            assert np.mean(arrays[channel][new] != original[channel][new]) > 0.9  # the grown tumour is drawn in
    # Inpainted, not painted by the phantom's contrast model: the contrast path gives other voxels for the same labels.
    painted = run_progress(ProgressRequest(case=scan, model="growth", months=[12], out=tmp_path / "painted", renderer="contrast"))
    contrast = _read(painted / json.loads((painted / "manifest.json").read_text())["time_points"][0]["case"])
    np.testing.assert_array_equal(contrast["seg"], series[1]["seg"])
    assert not np.array_equal(contrast["t1"], series[1]["t1"])


def test_the_renderer_follows_the_case(cases, scan):
    from medsynth_engine.progression.rendering import choose_renderer

    assert choose_renderer("auto", cases["small"]) == "contrast" and choose_renderer("auto", scan) == "inpaint"
    assert choose_renderer("inpaint", cases["small"]) == "inpaint"
    with pytest.raises(MedSynthError, match="Unknown renderer"):
        choose_renderer("paint", scan)


def test_a_series_interrupted_while_writing_leaves_nothing(cases, tmp_path, monkeypatch):
    """The disk fails on the second time point's files: no series folder, no hidden partial one."""
    from medsynth_engine.progression import series as series_module

    written = []

    def failing_write(path, array, affine):
        if "_m12" in Path(path).name:  # month 0's files (and regions.nii.gz) are written; month 12 has begun
            raise OSError(28, "No space left on device")
        written.append(Path(path))
        return real_write(path, array, affine)

    real_write = series_module.write_nifti
    monkeypatch.setattr(series_module, "write_nifti", failing_write)
    out = tmp_path / "series"
    with pytest.raises(OSError, match="No space left"):
        run_progress(ProgressRequest(case=cases["healthy"], model="atrophy", months=[0, 12], out=out))
    assert any("_m00" in p.name for p in written) and not any(p.exists() for p in written)  # the partial folder is gone
    assert not out.exists() and not list(tmp_path.glob(".series.partial-*"))
