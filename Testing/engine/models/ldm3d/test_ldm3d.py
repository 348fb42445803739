"""ldm3d at 16^3 (latents 8^3) with a few steps: both training stages, exact resume, stage rules, seeded sampling."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from medsynth_engine.errors import MedSynthError
from medsynth_engine.models.ldm3d.network import LDMConfig, condition_from_codes
from medsynth_engine.training.finetune import FinetuneRequest, run_finetune
from safetensors.torch import load_file

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

TINY = dict(model="ldm3d", resolution=16, width=8, batch_size=2, seed=5, checkpoint_every=2, log_every=1, steps=4)


def _request(data, out, **extra):
    return FinetuneRequest.make(data=data, out=out, **{**TINY, **extra})


def _stop_after(n: int):
    calls = {"n": 0}

    def stop() -> bool:
        calls["n"] += 1
        return calls["n"] >= n

    return stop


@pytest.fixture(scope="module")
def tiny_model(make_phantom_set, tmp_path_factory):
    """Autoencoder stage then (``--resume``, no ``--stage``) the diffusion stage, 4 steps each."""
    data = make_phantom_set(n=4, shape=(16, 16, 16), spacing=10.0)
    out = tmp_path_factory.mktemp("ldm3d") / "tiny"
    seen: list[dict] = []
    run_finetune(_request(data, out), progress=seen.append)
    ae_only = load_file(str(out / "model.safetensors"))
    run_finetune(_request(data, out, resume=True), progress=seen.append)
    return data, out, seen, ae_only


def test_two_stages_write_a_usable_model(tiny_model, registry):
    _, out, seen, ae_only = tiny_model
    assert not any(k.startswith("unet.") for k in ae_only)  # after stage 1 the folder holds the autoencoder only
    lines = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
    assert [(x["stage"], x["step"]) for x in lines] == [("autoencoder", s) for s in (1, 2, 3, 4)] + [("diffusion", s) for s in (1, 2, 3, 4)]
    assert all(np.isfinite(x["l1"]) and x["kl"] >= 0 for x in lines[:4]) and all(np.isfinite(x["mse"]) for x in lines[4:])
    assert {p["stage"] for p in seen if "losses" in p} == {"autoencoder", "diffusion"}
    assert sorted(p.name for p in (out / "samples").iterdir()) == [
        "mosaic_autoencoder_step2.png", "mosaic_autoencoder_step4.png", "mosaic_diffusion_step2.png", "mosaic_diffusion_step4.png"
    ]
    card = json.loads((out / "model.json").read_text())
    assert card["architecture"]["name"] == "ldm3d" and card["kind"] == "diffusion"
    assert card["architecture"]["stages_trained"] == ["autoencoder", "diffusion"]
    assert card["shape"] == [16] * 3 and card["spacing"] == [12.0] * 3 and card["channels"] == ["t1", "t1ce", "t2", "flair", "seg"]
    loss = card["preprocessing"]["training"]["autoencoder_loss"]
    assert loss.startswith("L1 (tumour voxels x") and "x KL" in loss and "(no perceptual loss" in loss  # says what it lacks
    assert card["architecture"]["scale_factor"] != 1.0  # set from the encoded training set
    weights = load_file(str(out / "model.safetensors"))
    assert all(torch.equal(weights[k], v) for k, v in ae_only.items())  # stage 2 left the autoencoder frozen
    plugin = registry.get(str(out))
    case = plugin.generate(seed=1, channels=("t1", "flair", "seg"), shape=(16,) * 3, spacing=(12.0,) * 3, tumour=True, device="cpu")
    assert case.arrays["t1"].dtype == np.int16 and case.arrays["t1"].shape == (16, 16, 16)
    assert set(np.unique(case.arrays["seg"])) <= {0, 1, 2, 4}


def test_resume_continues_exactly(tiny_model, tmp_path):
    data, straight, _, _ = tiny_model
    out = tmp_path / "b"
    run_finetune(_request(data, out), should_stop=_stop_after(2))
    assert json.loads((out / "checkpoint" / "state.json").read_text())["step"] == 2
    run_finetune(_request(data, out, resume=True, seed=1))  # an unfinished stage keeps its own settings
    run_finetune(_request(data, out, resume=True), should_stop=_stop_after(3))
    run_finetune(_request(data, out, resume=True))
    a, b = load_file(str(straight / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    losses = lambda folder: [(x["stage"], x["step"], x.get("l1"), x.get("mse")) for x in map(json.loads, (folder / "loss.jsonl").read_text().splitlines())]  # noqa: E731
    assert losses(straight) == losses(out)


def test_stage_rules(tiny_model, tmp_path):
    data, out, _, _ = tiny_model
    with pytest.raises(MedSynthError, match="autoencoder first"):
        run_finetune(_request(data, tmp_path / "c", stage="diffusion"))
    with pytest.raises(MedSynthError, match="--stage must be"):
        run_finetune(_request(data, tmp_path / "d", stage="controlnet"))
    before = (out / "model.safetensors").read_bytes()
    said: list[dict] = []
    assert run_finetune(_request(data, out, resume=True), progress=said.append) == out  # no later stage: nothing to train
    assert "has already trained 4 steps" in said[-1]["message"] and (out / "model.safetensors").read_bytes() == before
    with pytest.raises(MedSynthError, match="not empty"):
        run_finetune(_request(data, out))


def test_sampling_is_seeded_and_follows_the_mask(tiny_model, registry):
    _, out, _, _ = tiny_model
    plugin = registry.get(str(out))
    kwargs = dict(channels=("t1", "t2", "seg"), shape=(16,) * 3, spacing=(12.0,) * 3, tumour=True, device="cpu")
    plugin.steps = 3
    a, b, c = (plugin.generate(seed=s, **kwargs) for s in (7, 7, 8))
    assert all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)
    assert not np.array_equal(a.arrays["t1"], c.arrays["t1"])
    plugin.steps = 2
    assert plugin.generate(seed=7, **kwargs).params["sampling_steps"] == 2
    plugin.steps = None
    with pytest.raises(MedSynthError, match="sampling steps"):
        plugin.sampling_steps(0)


def test_condition_marks_tumour_classes_on_the_latent_grid():
    codes = torch.zeros((1, 32, 32, 32), dtype=torch.uint8)
    codes[0, :4, :4, :4] = 4
    codes[0, 28:, 28:, 28:] = 2
    cond = condition_from_codes(codes, LDMConfig(resolution=32).latent_resolution)
    assert cond.shape == (1, 4, 8, 8, 8) and torch.all(cond[:, 0] == 1)
    assert cond[0, 3, 0, 0, 0] == 1 and cond[0, 2, -1, -1, -1] == 1 and cond[0, 1].max() == -1


def test_latent_downsample_sets_the_autoencoder_levels(tiny_model, tmp_path):
    data, base, _, _ = tiny_model
    default = json.loads((base / "model.json").read_text())["architecture"]
    assert LDMConfig.from_dict(default).latent_resolution == 8  # below 32^3 the default is 1/2 of the side
    run_finetune(_request(data, tmp_path / "coarse", latent_downsample=4, steps=1, stage="autoencoder"))
    coarse = LDMConfig.from_dict(json.loads((tmp_path / "coarse" / "model.json").read_text())["architecture"])
    assert coarse.ae_channels == [8, 16, 32] and coarse.latent_resolution == 4
    weights = load_file(str(tmp_path / "coarse" / "model.safetensors"))
    assert any(k.startswith("autoencoder.encoder.blocks.") for k in weights)
    with pytest.raises(MedSynthError, match="latent grid fixed"):
        run_finetune(_request(data, tmp_path / "e", model=str(base), latent_downsample=4, stage="autoencoder"))
    with pytest.raises(MedSynthError, match="--latent-downsample must be one of 2, 4, 8, not 3"):
        run_finetune(_request(data, tmp_path / "f", latent_downsample=3))
    with pytest.raises(MedSynthError, match="--latent-downsample is for ldm3d models; pgan3d is a pgan3d model"):
        run_finetune(FinetuneRequest.make(model="pgan3d", data=data, out=tmp_path / "g", latent_downsample=2))


def test_autoencoder_learning_rate_decays_over_the_stage():
    from medsynth_engine.models.ldm3d.train import AE_LR, AE_LR_FINAL, autoencoder_lr

    rates = [autoencoder_lr(step, 100) for step in range(101)]
    assert rates[0] == AE_LR and abs(rates[-1] - AE_LR_FINAL) < 1e-12 and AE_LR_FINAL < AE_LR / 50
    assert all(a >= b for a, b in zip(rates, rates[1:], strict=False))
    assert abs(autoencoder_lr(50, 100) - (AE_LR + AE_LR_FINAL) / 2) < 1e-9
