"""The engine's add-tumour jobs and mask-conditioned generate jobs over real HTTP, with the shipped ldm3d-phantom."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from MedSynthLib.client import EngineError

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out


@pytest.fixture
def healthy_case(make_phantom_set, tmp_path) -> Path:
    """A copy of one tumour-free phantom case (MR sequences only)."""
    set_dir = make_phantom_set(n=1, shape=(32, 32, 32), spacing=6.0, channels="t1,t1ce,t2,flair", tumour=False)
    source = next(p for p in set_dir.iterdir() if p.is_dir())
    return Path(shutil.copytree(source, tmp_path / source.name))


def sphere(shape, affine, radius_mm: float) -> np.ndarray:
    """A drawn blob: a ball of ``radius_mm`` a little off the volume's centre (inside the brain)."""
    spacing = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    centre = np.array(shape) / 2 + np.array([3, 2, 2])
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    return (np.sqrt((((grid - centre) * spacing) ** 2).sum(axis=-1)) <= radius_mm).astype(np.uint8)


def write_outline(case: Path, dest: Path, radius_mm: float = 15.0) -> tuple[Path, np.ndarray, np.ndarray]:
    reference = nib.load(str(case / f"{case.name}_t1.nii.gz"))
    blob = sphere(reference.shape, reference.affine, radius_mm)
    nib.save(nib.Nifti1Image(blob, reference.affine), str(dest))
    return dest, blob, reference.affine


def _refused(client, kind: str, params: dict, status: int) -> str:
    with pytest.raises(EngineError) as info:
        client.submit(kind, params)
    assert info.value.status == status, str(info.value)
    assert str(info.value).endswith(".") and "\n" not in str(info.value)
    return str(info.value)


def test_bad_tumour_submissions_are_4xx_with_one_sentence(client, healthy_case, tmp_path):
    mask, _blob, _affine = write_outline(healthy_case, tmp_path / "mask.nii.gz")
    base = {"case": str(healthy_case), "mask": str(mask)}
    assert "outside the folders" in _refused(client, "add-tumour", {**base, "mask": "/etc/passwd"}, 403)
    assert "outside the folders" in _refused(client, "add-tumour", {**base, "case": "/etc"}, 403)
    assert "does not exist" in _refused(client, "add-tumour", {**base, "mask": str(tmp_path / "none.nii.gz")}, 404)
    assert "'mask'" in _refused(client, "add-tumour", {"case": str(healthy_case)}, 422)
    assert "'margin_mm'" in _refused(client, "add-tumour", {**base, "margin_mm": 0}, 422)
    assert "'steps'" in _refused(client, "add-tumour", {**base, "steps": 0}, 422)
    assert "inside the case folder" in _refused(client, "add-tumour", {**base, "out": str(healthy_case / "x")}, 409)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    assert "not empty" in _refused(client, "add-tumour", {**base, "out": str(full)}, 409)
    assert "nonexistent" in _refused(client, "add-tumour", {**base, "model": "nonexistent"}, 404)
    assert "outside the folders" in _refused(client, "generate", {"model": "phantom", "mask": "/etc/passwd"}, 403)
    assert "give the mask" in _refused(client, "generate", {"model": "phantom", "outline": True}, 409)
    assert (full / "keep.txt").read_text() == "mine"
    killed = tmp_path / "killed"  # what a killed add-tumour leaves: the command resumes into it, so the job does too
    (killed / ".case.partial").mkdir(parents=True)
    job = client.submit("add-tumour", {**base, "out": str(killed)})
    client.cancel(job["id"])


def test_add_tumour_from_a_drawn_outline_changes_only_the_margin(client, healthy_case, tmp_path):
    from medsynth_engine.addtumour import structure_from_outline

    mask, blob, affine = write_outline(healthy_case, tmp_path / "outline.nii.gz")
    margin = 8.0
    job = client.submit("add-tumour", {"case": str(healthy_case), "mask": str(mask), "outline": True, "seed": 3,
                                       "margin_mm": margin, "steps": 2})
    job = client.wait(job["id"], poll=0.2, timeout=120)
    assert job["state"] == "succeeded", (job["error"], job["log"][-5:])
    case = Path(job["result"]["case"])
    assert case.parent == Path(job["output_dir"]) and case.name == healthy_case.name
    assert sorted(Path(p).name.split("_")[-1] for p in job["result"]["written"]) == [
        "flair.nii.gz", "seg.nii.gz", "t1.nii.gz", "t1ce.nii.gz", "t2.nii.gz"]
    spacing = tuple(float(s) for s in np.sqrt((affine[:3, :3] ** 2).sum(axis=0)))
    expected = structure_from_outline(blob.astype(bool), spacing)  # the engine grew this tumour from the outline
    seg = np.asarray(nib.load(str(case / f"{case.name}_seg.nii.gz")).dataobj)
    np.testing.assert_array_equal(seg, expected)
    assert {1, 2, 4} <= set(np.unique(seg).tolist())
    far = ndimage.distance_transform_edt(expected == 0, sampling=spacing) > margin + max(spacing)
    changed = 0
    for channel in ("t1", "t1ce", "t2", "flair"):
        before = np.asarray(nib.load(str(healthy_case / f"{healthy_case.name}_{channel}.nii.gz")).dataobj)
        after = np.asarray(nib.load(str(case / f"{case.name}_{channel}.nii.gz")).dataobj)
        np.testing.assert_array_equal(after[far], before[far])  # bit-identical outside the margin
        changed += int((after != before).sum())
    assert changed > 0 and job["result"]["changed_voxels"] > 0


def test_generate_with_a_drawn_outline_keeps_the_grown_tumour_as_its_label(client, tmp_path):
    from medsynth_engine.addtumour import structure_from_outline

    card = client.model("ldm3d-phantom")
    shape, spacing = tuple(card["shape"]), tuple(float(s) for s in card["spacing"])
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = -(np.array(shape) - 1) * np.array(spacing) / 2  # the model's own grid (a mask elsewhere is resampled)
    blob = sphere(shape, affine, 3 * max(spacing))
    mask = tmp_path / "drawn.nii.gz"
    nib.save(nib.Nifti1Image(blob, affine), str(mask))
    job = client.submit("generate", {"model": "ldm3d-phantom", "n": 1, "seed": 1, "mask": str(mask), "outline": True,
                                     "channels": "t1,t1ce,t2,flair,seg"})
    job = client.wait(job["id"], poll=0.2, timeout=120)
    assert job["state"] == "succeeded", (job["error"], job["log"][-5:])
    assert job["result"]["output_dir"] == job["output_dir"]
    seg_file = next(Path(job["output_dir"]).glob("*/*_seg.nii.gz"))
    seg = np.asarray(nib.load(str(seg_file)).dataobj)
    np.testing.assert_array_equal(seg, structure_from_outline(blob.astype(bool), spacing))


def test_a_model_without_mask_support_refuses_the_mask(client, tmp_path):
    mask = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(np.pad(np.ones((2, 2, 2), np.uint8), 7), np.diag([8.0, 8.0, 8.0, 1.0])), str(mask))
    params = {"model": "phantom", "n": 1, "shape": 16, "spacing": 8, "mask": str(mask)}
    job = client.wait(client.submit("generate", params)["id"], poll=0.2, timeout=60)
    # Submitting loads no model, so the model's own refusal fails the job when it starts, before anything is written.
    assert job["state"] == "failed" and "cannot follow a tumour mask" in job["error"]
    assert not Path(job["output_dir"]).exists()


def test_generate_on_an_engine_forwards_the_mask(engine, tmp_path):
    """``medsynth generate --engine URL --mask M`` hands the mask to the engine's job (here: refused, outside its folders)."""
    medsynth = Path(sys.executable).parent / "medsynth"
    result = subprocess.run(
        [str(medsynth), "generate", "--engine", engine.url, "--token-file", str(engine.token_file), "--model", "phantom",
         "--mask", "/etc/hostname", "--out", str(tmp_path / "out"), "--quiet"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2 and "mask path /etc/hostname is outside the folders" in result.stderr
    assert not (tmp_path / "out").exists()


def test_cancelling_an_add_tumour_job_stops_its_process_and_writes_nothing(engine, client, healthy_case, tmp_path):
    import psutil
    from service_helpers import wait_for

    mask, _blob, _affine = write_outline(healthy_case, tmp_path / "outline.nii.gz")
    out = tmp_path / "out"
    job = client.submit("add-tumour", {"case": str(healthy_case), "mask": str(mask), "outline": True, "out": str(out),
                                       "steps": 1000})
    job = wait_for(client, job["id"], lambda j: j["state"] == "running" and j["progress"] > 0)
    assert psutil.Process(engine.pid).children(recursive=True)  # the worker process
    job = client.cancel(job["id"])
    assert not psutil.Process(engine.pid).children(recursive=True)  # gone, with anything it started
    assert job["state"] == "cancelled"
    assert not (out / healthy_case.name).exists()
    assert client.job(job["id"])["result"] == {}
