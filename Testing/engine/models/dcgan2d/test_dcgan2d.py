"""dcgan2d at 32x32 with a few real steps: networks, slice choice, training, exact resume, 2D sets, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from medsynth_engine.generate import GenerateRequest, generate_set
from medsynth_engine.models.dcgan2d.network import Critic, DCGANConfig, Generator
from medsynth_engine.models.slices2d.slices import best_slices
from medsynth_engine.training.finetune import FinetuneRequest, run_finetune
from safetensors.torch import load_file

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

MEDSYNTH_BIN = Path(sys.executable).parent / "medsynth"
TINY = dict(model="dcgan2d", resolution=32, width=16, batch_size=4, seed=5, checkpoint_every=2, log_every=1, slices_per_case=6, spacing=6.0)


@pytest.mark.parametrize("upsample", ["transposed", "resize"])
def test_networks_make_images_and_label_probabilities(upsample):
    config = DCGANConfig(resolution=32, width=16, image_channels=["t1", "flair"], labels=True, upsample=upsample)
    generator, critic = Generator(config).eval(), Critic(config).eval()
    out = generator(torch.randn(3, config.latent_dim))
    assert out.shape == (3, 6, 32, 32)
    assert out[:, :2].abs().max() <= 1.0
    torch.testing.assert_close(out[:, 2:].sum(dim=1), torch.ones(3, 32, 32))
    assert critic(out).shape == (3,)
    transposed = [m for m in generator.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert len(transposed) == (3 if upsample == "transposed" else 0)  # 4 -> 8 -> 16 -> 32


def test_poster_sizes_at_256():
    """The issue's generator: 1024x4x4 -> 512x8x8 ... 32x128x128 -> C x256x256; the critic doubles 32 -> 1024."""
    config = DCGANConfig(resolution=256, width=1024, image_channels=["t1", "t2", "flair"], upsample="transposed")
    layers = [m for m in Generator(config).body if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.out_channels for m in layers] == [512, 256, 128, 64, 32, 3]
    convs = [m for m in Critic(config).modules() if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in convs[1::2]] == [32, 64, 128, 256, 512, 1024]


def test_best_slices_prefer_head_and_tumour():
    images = -np.ones((1, 8, 8, 5), dtype=np.float32)
    images[0, :4, :, 1] = 0.5  # 32 head voxels
    images[0, :2, :, 3] = 0.5  # 16 head voxels
    labels = np.zeros((8, 8, 5), dtype=np.uint8)
    labels[:3, :6, 4] = 2  # 18 tumour voxels on an otherwise empty slice
    assert best_slices(images, labels, 2).tolist() == [1, 4]
    assert best_slices(images, None, 2).tolist() == [1, 3]
    assert best_slices(images, labels, 50).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.slow
def test_train_then_generate_a_2d_set(make_phantom_set, tmp_path, registry):
    seen: list[dict] = []
    out = run_finetune(FinetuneRequest.make(data=make_phantom_set(), out=tmp_path / "m", steps=3, **TINY), progress=seen.append)
    lines = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3]
    assert all(np.isfinite([line[k] for k in ("g", "d", "gp", "wdist")]).all() for line in lines)
    assert [p["step"] for p in seen if "losses" in p] == [1, 2, 3]
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["mosaic_step2.png", "mosaic_step3.png"]
    card = json.loads((out / "model.json").read_text())
    assert card["shape"] == [32, 32] and card["spacing"] == [6.0, 6.0] and card["architecture"]["upsample"] == "resize"
    assert card["channels"] == ["t1", "t1ce", "t2", "flair", "seg"]
    assert "gradient penalty" in card["preprocessing"]["training"]["loss"]
    report = json.loads((out / "checkpoint" / "data_report.json").read_text())
    assert report["subjects"] == 4 and report["slices"] == 4 * 6

    request = dict(model=str(out), n=2, seed=9, channels=("t1", "flair", "seg"), device="cpu")
    first = generate_set(GenerateRequest(out=tmp_path / "a", **request), registry)
    again = generate_set(GenerateRequest(out=tmp_path / "b", layout="nnunet", **request), registry)
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["parameters"]["shape"] == [32, 32] and len(manifest["cases"]) == 2
    case = manifest["cases"][0]
    t1 = nib.load(first / case["files"]["t1"])
    seg = np.asarray(nib.load(first / case["files"]["seg"]).dataobj)
    assert t1.shape == (32, 32, 1) and t1.get_data_dtype() == np.int16
    np.testing.assert_allclose(t1.header.get_zooms(), (6.0, 6.0, 6.0))
    np.testing.assert_allclose(t1.affine[:3, :3], np.diag([6.0, 6.0, 6.0]))
    assert set(np.unique(seg)) <= {0, 1, 2, 4} and seg.dtype == np.uint8
    other = next(c for c in json.loads((again / "manifest.json").read_text())["cases"] if c["seed"] == case["seed"])
    same_t1 = np.asarray(nib.load(again / other["files"]["t1"]).dataobj)
    np.testing.assert_array_equal(same_t1, np.asarray(t1.dataobj))  # same seed, same pixels, in either layout
    assert nib.load(again / other["files"]["seg"]).shape == (32, 32, 1)


@pytest.mark.slow
def test_resume_continues_exactly(make_phantom_set, tmp_path):
    data = make_phantom_set()
    straight = run_finetune(FinetuneRequest.make(data=data, out=tmp_path / "a", steps=4, **TINY))
    calls = {"n": 0}

    def stop_after_two() -> bool:
        calls["n"] += 1
        return calls["n"] >= 2

    half = run_finetune(FinetuneRequest.make(data=data, out=tmp_path / "b", steps=4, **TINY), should_stop=stop_after_two)
    assert json.loads((half / "checkpoint" / "state.json").read_text())["steps_done"] == 2
    run_finetune(FinetuneRequest.make(data=data, out=tmp_path / "b", steps=4, resume=True, **TINY))
    a, b = load_file(str(straight / "model.safetensors")), load_file(str(half / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    log_b = [json.loads(x) for x in (half / "loss.jsonl").read_text().splitlines()]
    log_a = [json.loads(x) for x in (straight / "loss.jsonl").read_text().splitlines()]
    assert [x["step"] for x in log_b] == [1, 2, 3, 4] and [x["d"] for x in log_a] == [x["d"] for x in log_b]


@pytest.mark.slow
def test_cli_lists_the_family_and_refuses_bad_options(make_phantom_set, tmp_path):
    listing = subprocess.run([str(MEDSYNTH_BIN), "models"], capture_output=True, text=True)
    assert listing.returncode == 0 and "dcgan2d" in listing.stdout and "--upsample" in listing.stdout
    base = [str(MEDSYNTH_BIN), "finetune", "--model", "dcgan2d", "--data", str(make_phantom_set()), "--steps", "1"]
    bad = subprocess.run([*base, "--out", str(tmp_path / "m"), "--upsample", "bilinear"], capture_output=True, text=True)
    assert bad.returncode == 2 and "transposed" in bad.stderr
    two = subprocess.run([*base, "--out", str(tmp_path / "m"), "--nproc", "2", "--batch-size", "2"], capture_output=True, text=True)
    assert two.returncode == 2 and "one process" in two.stderr
    none = subprocess.run([*base, "--out", str(tmp_path / "m"), "--slices-per-case", "0"], capture_output=True, text=True)
    assert none.returncode == 2 and none.stderr.strip().endswith("--slices-per-case must be 1 to 4096, not 0.") and none.stderr.count("\n") == 1
    assert not (tmp_path / "m").exists()


def test_stride_peaks_see_a_checkerboard():
    from medsynth_engine.models.dcgan2d.spectrum import stride_peaks

    grid = np.indices((32, 32)).sum(axis=0)
    smooth = np.random.default_rng(0).normal(size=(8, 32, 32)).cumsum(axis=1).cumsum(axis=2)
    smooth /= smooth.std()
    chequered = smooth + 0.3 * (grid % 2)[None] + 0.3 * ((grid // 2) % 2)[None]
    clean, grid_peaks = stride_peaks(smooth), stride_peaks(chequered)
    assert clean[2] < 3 and clean[4] < 3
    assert grid_peaks[2] > 10 * clean[2] and grid_peaks[4] > 4 * clean[4]


def test_the_shipped_model_makes_heads_with_tumours_and_no_grid(registry, tmp_path):
    """dcgan2d-phantom: registered, its card complete, its slices heads (most with a tumour), no stride peak."""
    from medsynth_engine.models.dcgan2d.spectrum import stride_peaks
    from medsynth_engine.weights import shipped_folder

    assert shipped_folder("dcgan2d-phantom") is not None, "the shipped dcgan2d weights are missing from the package"
    model = registry.get("dcgan2d-phantom")
    card = model.card
    assert model.family.name == "dcgan2d" and card.architecture["upsample"] == "resize" and card.shape == [128, 128]
    assert card.licence and card.training_data and card.metrics.get("validity", {}).get("spatial_dims") == 2
    out = generate_set(GenerateRequest(model="dcgan2d-phantom", out=tmp_path / "s", n=16, seed=4, device="cpu"), registry)
    cases = json.loads((out / "manifest.json").read_text())["cases"]
    flair = np.stack([np.asarray(nib.load(out / c["files"]["flair"]).dataobj)[..., 0] for c in cases]).astype(np.float32)
    seg = np.stack([np.asarray(nib.load(out / c["files"]["seg"]).dataobj)[..., 0] for c in cases])
    head = flair > 0.1 * flair.max()
    assert all(0.2 < h.mean() < 0.8 for h in head)  # a head in the middle of the field, air around it
    assert sum(bool((s > 0).any()) for s in seg) >= 4  # tumours, as in the training slices (most have one)
    assert ((seg > 0) <= head).mean() > 0.99  # labels lie in the head
    peaks = stride_peaks(flair)
    assert peaks[2] < 3 and peaks[4] < 3  # resize-then-convolve: no grid artefact (the poster's transposed: 9.4, 5.3)
