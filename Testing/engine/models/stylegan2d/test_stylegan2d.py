"""stylegan2d at 32x32 with a few real steps: networks, demodulation, labels, ADA, exact resume, 2D sets, truncation,
projection into W, the CLI."""

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
from medsynth_engine.models.slices2d.output import to_physical
from medsynth_engine.models.slices2d.slices import load_slices
from medsynth_engine.models.stylegan2d.augment import augment
from medsynth_engine.models.stylegan2d.labels import LEVELS, classes, decode, encode, one_hot_scores
from medsynth_engine.models.stylegan2d.network import Discriminator, Generator, ModulatedConv2d, StyleGANConfig
from medsynth_engine.models.stylegan2d.plugin import StyleGAN2DModel
from medsynth_engine.models.stylegan2d.project import project, read_target
from medsynth_engine.models.stylegan2d.trainer import StyleGANTrainer, TrainSettings
from medsynth_engine.training.finetune import FinetuneRequest, run_finetune
from safetensors.torch import load_file

MEDSYNTH_BIN = Path(sys.executable).parent / "medsynth"
TINY = dict(
    model="stylegan2d", resolution=32, width=16, batch_size=2, seed=5, checkpoint_every=2, log_every=1, slices_per_case=3, spacing=6.0,
    mapping_layers=2, ada_kimg=0.05,
)
CONFIG = dict(resolution=32, width=16, image_channels=["t1", "flair"], labels=True, mapping_layers=2)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """One torch thread for this module. At 32x32 and width 16 a second thread gains nothing, and on a loaded CPU
    two OpenMP threads spin waiting for each other: the 2 + 2 resume test's fine-tunes took 37 s of CPU with two
    threads against 4 s with one (load average 10), so in the suite it ran past the 600 s timeout. Each run of a
    test uses the same count, so exactness is tested as before."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_networks_make_five_channel_slices():
    config = StyleGANConfig(**{**CONFIG, "image_channels": ["t1", "t1ce", "t2", "flair"]})
    generator, discriminator = Generator(config), Discriminator(config)
    z = torch.randn(3, config.w_dim)
    ws = generator.ws(z)
    assert ws.shape == (3, config.num_ws, 16) and config.num_ws == 8
    assert generator.synthesis(ws, "random").shape == (3, 5, 32, 32)
    const_a, const_b = generator.synthesis(ws, "const"), generator.synthesis(ws, "const")
    torch.testing.assert_close(const_a, const_b, rtol=0, atol=0)
    assert discriminator(const_a).shape == (3,)
    assert StyleGANConfig(resolution=256).num_ws == 14  # the paper's count at 256x256
    with pytest.raises(MedSynthError, match="32, 64, 128 or 256"):
        StyleGANConfig(resolution=16)


def test_demodulation_gives_unit_norm_weights_whatever_the_style():
    conv = ModulatedConv2d(8, 4, 3, 16)
    for scale in (0.1, 1.0, 30.0):
        weight = conv.modulated_weight(scale * torch.randn(5, 16))
        torch.testing.assert_close(weight.square().sum(dim=(2, 3, 4)), torch.ones(5, 4), rtol=1e-4, atol=1e-4)
    raw = ModulatedConv2d(8, 4, 3, 16, demodulate=False).modulated_weight(30.0 * torch.randn(5, 16))
    assert not torch.allclose(raw.square().sum(dim=(2, 3, 4)), torch.ones(5, 4), atol=0.1)
    x = torch.randn(2, 8, 8, 8)
    w = torch.randn(2, 16)
    with torch.no_grad():
        conv.affine.weight.mul_(7.0)  # larger styles: demodulated output keeps its scale
        big = conv(x, w)
    assert 0.3 < float(big.std()) < 3.0


def test_label_levels_round_trip_and_quantise():
    codes = torch.tensor([[[0, 1], [2, 4]]])
    levels = encode(codes)
    assert levels.shape == (1, 1, 2, 2) and torch.equal(levels.flatten(), LEVELS)
    noisy = levels + 0.15 * torch.tensor([1.0, -1.0, 1.0, -1.0]).reshape(1, 1, 2, 2)
    assert classes(noisy[:, 0]).flatten().tolist() == [0, 1, 2, 3]


def test_one_hot_labels_survive_an_output_that_shrinks_where_levels_do_not():
    """The CPU recipe's failure (bench/results/validity.md): an immature generator draws its label output with too
    little amplitude. Scaled towards 0, one-hot labels decode to the same classes; levels read oedema as necrosis."""
    codes = torch.tensor([[[0, 1], [2, 4]]])
    one_hot = encode(codes, "one-hot")
    assert one_hot.shape == (1, 4, 2, 2) and set(one_hot.unique().tolist()) == {-1.0, 1.0}
    noisy = one_hot + 0.3 * torch.randn(one_hot.shape, generator=torch.Generator().manual_seed(0))
    assert decode(noisy, "one-hot").flatten().tolist() == [0, 1, 2, 3]
    shrunk = 0.2 * noisy - 0.1  # less amplitude, pulled towards the background side
    assert decode(shrunk, "one-hot").flatten().tolist() == [0, 1, 2, 3]
    assert decode(0.2 * encode(codes) - 0.1, "levels").flatten().tolist() != [0, 1, 2, 3]
    assert one_hot_scores(torch.cat([torch.zeros(1, 2, 2, 2), shrunk], dim=1), 2, "one-hot")[:, 2:].argmax(1).flatten().tolist() == [0, 1, 2, 3]


def test_a_model_from_before_the_one_hot_encoding_still_loads_as_levels():
    old = StyleGANConfig.from_dict({"resolution": 32, "image_channels": ["t1"], "labels": True, "width": 16, "mapping_layers": 2,
                                    "name": "stylegan2d", "version": 1})
    assert old.label_encoding == "levels" and old.out_channels == 2
    new = StyleGANConfig(**{**CONFIG, "label_encoding": "one-hot"})
    generator = Generator(new)
    out = generator.synthesis(generator.ws(torch.randn(2, new.w_dim)), "const")
    assert new.out_channels == 2 + 4 and out.shape == (2, 6, 32, 32) and Discriminator(new)(out).shape == (2,)
    with pytest.raises(MedSynthError, match="--label-encoding must be"):
        StyleGANConfig(**{**CONFIG, "label_encoding": "soft"})


def test_augment_is_differentiable_and_leaves_the_label_channel_in_range():
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    assert augment(x, 0.0, 2) is x
    x.requires_grad_(True)
    out = augment(x, 1.0, 2)
    out.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert not torch.allclose(out, x)
    out, x = out.detach(), x.detach()
    assert float(out[:, 2].min()) >= float(x[:, 2].min()) - 1e-5 and float(out[:, 2].max()) <= float(x[:, 2].max()) + 1e-5
    assert float(out[:, :2].abs().max()) > float(x[:, :2].abs().max())  # brightness/contrast on images only


@pytest.mark.slow
def test_ada_p_rises_when_the_discriminator_overfits_and_falls_when_it_does_not(make_phantom_set):
    from medsynth_engine.data.preprocess import PreprocessSpec

    data = load_slices(make_phantom_set(), PreprocessSpec(shape=(32,) * 3, spacing=(6.0,) * 3), 1)
    data.images, data.labels = data.images[:2], data.labels[:2]  # two slices: a discriminator learns them by heart
    config = StyleGANConfig(**{**CONFIG, "image_channels": list(data.channels[:-1])})
    trainer = StyleGANTrainer(config, data, TrainSettings(batch_size=2, r1_gamma=0.0, ada_kimg=0.1, lr=0.01), torch.device("cpu"), 1)
    for _ in range(8):
        trainer.discriminator_step(2)  # only D learns: it overfits the two real slices
        trainer.steps_done += 1
    trainer.ada.adjust(2)
    assert float(trainer.ada.rt) > 0.6 and float(trainer.ada.p) == pytest.approx(2 * 4 / 100)
    with torch.no_grad():
        fakes = trainer.G.synthesis(trainer.G.ws(torch.randn(4, config.w_dim)))
        trainer.ada.observe(trainer.D(fakes))  # logits of images D calls fake: r_t below the target
    trainer.ada.adjust(2)
    assert float(trainer.ada.rt) < 0.6 and float(trainer.ada.p) == pytest.approx(0.0)


@pytest.fixture(scope="module")
def trained(make_phantom_set, tmp_path_factory) -> Path:
    """A stylegan2d folder fine-tuned 2 steps on phantom slices (module-scoped: the tests below only read it)."""
    out = tmp_path_factory.mktemp("stylegan2d") / "m"
    return run_finetune(FinetuneRequest.make(data=make_phantom_set(), out=out, steps=2, **TINY))


@pytest.mark.slow
def test_resume_continues_exactly(make_phantom_set, tmp_path):
    data = make_phantom_set()
    straight = run_finetune(FinetuneRequest.make(data=data, out=tmp_path / "a", steps=4, **TINY))
    first = run_finetune(FinetuneRequest.make(data=data, out=tmp_path / "b", steps=2, **TINY))
    run_finetune(FinetuneRequest.make(data=data, out=first, steps=4, resume=True, **TINY))
    a, b = load_file(str(straight / "model.safetensors")), load_file(str(first / "model.safetensors"))
    assert a.keys() == b.keys() and "generator.mapping.w_avg" in a
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    state_a, state_b = (load_file(str(next((p / "checkpoint").glob("state-*.safetensors")))) for p in (straight, first))
    for key in ("ada.p", "ada.sign_sum", "ada.seen", "stats.pl_mean"):
        assert torch.equal(state_a[key], state_b[key]), key
    log_a, log_b = ([{k: v for k, v in json.loads(x).items() if k != "time"} for x in (p / "loss.jsonl").read_text().splitlines()] for p in (straight, first))
    assert log_a == log_b and [x["step"] for x in log_b] == [1, 2, 3, 4]
    assert log_a[2]["ada_rt"] == 0.0 and log_a[3]["ada_rt"] != 0.0  # ADA's first adjustment, after 4 minibatches
    assert log_a[0]["pl"] > 0 and log_a[0]["r1"] > 0  # R1 and path length ran at the first step (lazy: every 16 and 4)
    card = json.loads((straight / "model.json").read_text())
    assert card["preprocessing"]["training"]["ada"]["p"] == pytest.approx(log_a[-1]["ada_p"], abs=1e-6)


@pytest.mark.slow
def test_generate_writes_single_slice_nifti_with_brats_codes(trained, tmp_path, registry):
    card = json.loads((trained / "model.json").read_text())
    assert card["shape"] == [32, 32] and card["channels"] == ["t1", "t1ce", "t2", "flair", "seg"]
    assert sorted(p.name for p in (trained / "samples").iterdir()) == ["mosaic_step2.png"]
    out = generate_set(GenerateRequest(model=str(trained), n=2, seed=3, out=tmp_path / "set", device="cpu"), registry)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["architecture"]["name"] == "stylegan2d" and "truncation" not in manifest["parameters"]
    case = manifest["cases"][0]
    t1 = nib.load(out / case["files"]["t1"])
    seg = np.asarray(nib.load(out / case["files"]["seg"]).dataobj)
    assert t1.shape == (32, 32, 1) and t1.get_data_dtype() == np.int16
    np.testing.assert_allclose(t1.affine[:3, :3], np.diag([6.0, 6.0, 6.0]))
    assert seg.shape == (32, 32, 1) and seg.dtype == np.uint8 and set(np.unique(seg)) <= {0, 1, 2, 4}


@pytest.mark.slow
def test_truncation_zero_gives_the_average_image_for_every_seed(trained):
    model = StyleGAN2DModel(trained)
    args = dict(channels=("t1", "flair", "seg"), shape=(32, 32), spacing=(6.0, 6.0), tumour=True, device="cpu")
    cases = [model.generate(seed=seed, truncation=0.0, **args) for seed in (1, 2, 3)]
    free = [model.generate(seed=seed, **args) for seed in (1, 2)]
    with torch.no_grad():
        g = model.generator
        average = g.synthesis(g.mapping.w_avg[None, None].repeat(1, model.config.num_ws, 1), noise_mode="const")
    for case in cases[1:]:
        for channel in args["channels"]:
            np.testing.assert_array_equal(case.arrays[channel], cases[0].arrays[channel])
    assert not np.array_equal(free[0].arrays["t1"], free[1].arrays["t1"])  # without truncation the seeds differ
    np.testing.assert_array_equal(to_physical(one_hot_scores(average, 4, "one-hot").numpy()[0], model.card)["t1"], cases[0].arrays["t1"])


def test_options_a_model_does_not_take_are_refused(registry, tmp_path):
    request = GenerateRequest(model="phantom", n=1, seed=0, out=tmp_path / "x", truncation=0.5, shape=(24, 24, 24), spacing=(6.0,) * 3)
    with pytest.raises(MedSynthError, match="does not take --truncation"):
        generate_set(request, registry)
    with pytest.raises(MedSynthError, match="0 to 1"):
        GenerateRequest(model="phantom", n=1, seed=0, out=tmp_path / "x", truncation=1.5).validate()
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_projection_gets_closer_and_variations_follow_the_slice(trained, make_phantom_set, tmp_path, registry):
    model = StyleGAN2DModel(trained)
    case = next(p for p in sorted(make_phantom_set().iterdir()) if p.is_dir())
    target = read_target(case, model.card)  # a volume: the training preprocessing picks its best slice
    assert model.config.label_encoding == "one-hot"  # new models' default
    assert target.shape == (1, 4 + 4, 32, 32) and set(decode(target[:, 4:], "one-hot").unique().tolist()) >= {0, 2}
    w, distances = project(model.generator, target, steps=12)
    assert w.shape == (1, 16) and distances[-1] < 0.9 * distances[0]
    registry.generator(str(trained)).projection_steps = 12  # the instance generate_set uses (the registry keeps it warm)
    out = generate_set(
        GenerateRequest(model=str(trained), n=2, seed=1, out=tmp_path / "like", like=case, truncation=0.0, device="cpu"), registry
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parameters"]["like"] is True and str(case) not in (out / "manifest.json").read_text()
    first = nib.load(out / manifest["cases"][0]["files"]["t1"]).get_fdata()
    second = nib.load(out / manifest["cases"][1]["files"]["t1"]).get_fdata()
    np.testing.assert_array_equal(first, second)  # psi 0: every variation is the projection itself
    model.projection_steps = 12
    with torch.no_grad():
        projected = model.generator.synthesis(model.projection(case)[:, None].repeat(1, model.config.num_ws, 1), noise_mode="const")
    np.testing.assert_array_equal(to_physical(one_hot_scores(projected, 4, "one-hot").numpy()[0], model.card)["t1"], first[..., 0])


@pytest.mark.slow
def test_cli_lists_the_family_and_refuses_bad_options(make_phantom_set, tmp_path):
    listing = subprocess.run([str(MEDSYNTH_BIN), "models"], capture_output=True, text=True)
    assert listing.returncode == 0 and "stylegan2d" in listing.stdout and "--ada-target" in listing.stdout
    base = [str(MEDSYNTH_BIN), "finetune", "--model", "stylegan2d", "--data", str(make_phantom_set()), "--steps", "1"]
    bad = subprocess.run([*base, "--out", str(tmp_path / "m"), "--style-mixing", "1.5"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--style-mixing must be 0 to 1" in bad.stderr
    small = subprocess.run([*base, "--out", str(tmp_path / "m"), "--resolution", "16"], capture_output=True, text=True)
    assert small.returncode == 2 and "32, 64, 128 or 256" in small.stderr
    assert not (tmp_path / "m").exists()


@pytest.mark.slow
def test_the_learning_rate_option_reaches_both_optimisers_and_the_card(make_phantom_set, tmp_path):
    """--learning-rate sets G's and D's Adam (scaled by lazy regularisation's interval ratio) and is recorded."""
    from medsynth_engine.models.stylegan2d.trainer import PL_INTERVAL, R1_INTERVAL

    out = run_finetune(FinetuneRequest.make(data=make_phantom_set(), out=tmp_path / "lr", steps=1, **TINY, learning_rate=0.0004))
    card = json.loads((out / "model.json").read_text())
    assert "Adam lr 0.0004" in card["preprocessing"]["training"]["optimiser"]
    assert card["preprocessing"]["training"]["label_channel"].startswith("tumour label as four channels")  # one-hot, the default
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["optimisers"]["opt_g"][0]["lr"] == pytest.approx(0.0004 * PL_INTERVAL / (PL_INTERVAL + 1))
    assert state["optimisers"]["opt_d"][0]["lr"] == pytest.approx(0.0004 * R1_INTERVAL / (R1_INTERVAL + 1))
