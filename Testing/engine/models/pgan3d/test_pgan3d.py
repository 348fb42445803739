"""pgan3d networks and plugin: stage shapes, fade-in continuity, labels, loading a model folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from medsynth_engine.errors import MedSynthError
from medsynth_engine.modelfile import ModelCard, save_model_folder
from medsynth_engine.models.pgan3d.network import Discriminator, Generator, PGANConfig, downsample, upsample
from medsynth_engine.models.pgan3d.plugin import PGAN3DModel, to_physical

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

TINY = dict(resolution=16, base_width=16, max_width=16, latent_dim=8)


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    config = PGANConfig(**TINY)
    return config, Generator(config).eval(), Discriminator(config).eval()


@pytest.mark.parametrize("stage,side", [(0, 4), (1, 8), (2, 16)])
def test_stage_shapes(nets, stage, side):
    config, g, d = nets
    z = torch.randn(4, config.latent_dim)
    out = g(z, stage, 1.0)
    assert out.shape == (4, 4 + 4, side, side, side)
    assert d(out, stage, 1.0).shape == (4,)


def test_labels_are_a_distribution(nets):
    config, g, _ = nets
    out = g(torch.randn(2, config.latent_dim))
    probs = out[:, 4:]
    assert torch.all(probs >= 0)
    torch.testing.assert_close(probs.sum(1), torch.ones_like(probs[:, 0]))


def test_generator_fade_in_is_continuous(nets):
    """alpha = 0 at a new stage is exactly the previous stage upsampled; alpha = 1 is the new block alone."""
    config, g, _ = nets
    z = torch.randn(2, config.latent_dim)
    with torch.no_grad():
        torch.testing.assert_close(g(z, 2, 0.0), upsample(g(z, 1, 1.0)))
        torch.testing.assert_close(g(z, 2, 0.999), g(z, 2, 1.0), atol=0.05, rtol=0)
        mid = g(z, 2, 0.5)
        torch.testing.assert_close(mid, 0.5 * g(z, 2, 1.0) + 0.5 * upsample(g(z, 1, 1.0)))


def test_discriminator_fade_in_is_continuous(nets):
    config, _, d = nets
    x = torch.randn(2, config.out_channels, 16, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(d(x, 2, 0.0), d(downsample(x), 1, 1.0))


def test_no_transposed_convolutions(nets):
    _, g, d = nets
    for module in list(g.modules()) + list(d.modules()):
        assert not isinstance(module, (torch.nn.ConvTranspose3d, torch.nn.ConvTranspose2d))


def test_single_channel_without_labels():
    config = PGANConfig(resolution=8, image_channels=["t1"], labels=False, base_width=8, max_width=8, latent_dim=4)
    out = Generator(config)(torch.randn(2, 4))
    assert out.shape == (2, 1, 8, 8, 8)
    assert Discriminator(config)(out).shape == (2,)


@pytest.mark.parametrize("kwargs", [dict(resolution=12), dict(resolution=4), dict(resolution=512), dict(image_channels=[])])
def test_config_rejects_bad_arguments(kwargs):
    with pytest.raises(MedSynthError):
        PGANConfig(**kwargs)


def _folder(tmp_path, config):
    torch.manual_seed(1)
    g = Generator(config)
    card = ModelCard(
        id="pgan3d-test",
        kind="gan",
        architecture=config.to_dict(),
        channels=list(config.image_channels) + ["seg"],
        shape=[config.resolution] * 3,
        spacing=[12.0] * 3,
        training_data="random weights (test)",
        licence="CC0-1.0",
        preprocessing={"normalisation": {"channels": {c: {"low": 0.0, "high": 1000.0} for c in config.image_channels}}},
    )
    save_model_folder(tmp_path, card, {f"generator.{k}": v for k, v in g.state_dict().items()})
    return tmp_path


def test_plugin_loads_a_folder_and_generates_reproducibly(tmp_path, registry):
    config = PGANConfig(**TINY)
    folder = _folder(tmp_path / "m", config)
    plugin = registry.get(str(folder))
    assert isinstance(plugin, PGAN3DModel)
    kwargs = dict(channels=("t1", "flair", "seg"), shape=(16,) * 3, spacing=(12.0,) * 3, tumour=True, device="cpu")
    plugin.check_request(channels=kwargs["channels"], shape=kwargs["shape"], spacing=kwargs["spacing"])
    a, b, c = plugin.generate(seed=5, **kwargs), plugin.generate(seed=5, **kwargs), plugin.generate(seed=6, **kwargs)
    assert set(a.arrays) == {"t1", "flair", "seg"}
    assert a.arrays["t1"].dtype == np.int16 and a.arrays["seg"].dtype == np.uint8
    assert set(np.unique(a.arrays["seg"])) <= {0, 1, 2, 4}
    assert a.arrays["t1"].min() >= 0 and a.arrays["t1"].max() <= 1000
    np.testing.assert_array_equal(a.arrays["t1"], b.arrays["t1"])
    assert not np.array_equal(a.arrays["t1"], c.arrays["t1"])
    np.testing.assert_allclose(np.diag(a.affine)[:3], 12.0)
    with pytest.raises(MedSynthError, match="makes"):
        plugin.check_request(channels=("t1",), shape=(32,) * 3, spacing=(6.0,) * 3)
    with pytest.raises(MedSynthError, match="no-tumour"):
        plugin.generate(seed=1, **{**kwargs, "tumour": False})


def test_plugin_refuses_weights_of_another_shape(tmp_path, registry):
    folder = _folder(tmp_path / "m", PGANConfig(**TINY))
    import json

    card = json.loads((folder / "model.json").read_text())
    card["architecture"]["base_width"] = 32
    card["architecture"]["max_width"] = 32
    (folder / "model.json").write_text(json.dumps(card))
    with pytest.raises(MedSynthError, match="do not fit"):
        registry.get(str(folder))


def test_to_physical_maps_labels_and_intensities():
    config = PGANConfig(resolution=8, image_channels=["t1"], labels=True)
    card = ModelCard(
        id="x", kind="gan", architecture=config.to_dict(), channels=["t1", "seg"], shape=[8] * 3, spacing=[1.0] * 3,
        training_data="-", licence="-", preprocessing={"normalisation": {"channels": {"t1": {"low": 100.0, "high": 300.0}}}},
    )
    out = np.zeros((5, 8, 8, 8), dtype=np.float32)
    out[0] = np.linspace(-1.5, 1.5, 8)[:, None, None]
    out[1 + 3, :4] = 1.0  # ET where x < 4
    out[1 + 0, 4:] = 1.0  # background elsewhere
    arrays = to_physical(out, card)
    assert arrays["t1"].min() == 100 and arrays["t1"].max() == 300
    assert set(np.unique(arrays["seg"][:4])) == {4} and set(np.unique(arrays["seg"][4:])) == {0}


def test_shipped_model_is_registered(registry):
    from medsynth_engine.weights import shipped_folder

    assert shipped_folder("pgan3d-phantom") is not None, "the default pgan3d weights are missing from the package"
    plugin = registry.get("pgan3d-phantom")
    assert plugin.family.name == "pgan3d"
    card = plugin.card
    assert card.kind == "gan" and card.architecture["name"] == "pgan3d"
    assert "ms_ssim_between_samples" in card.metrics and card.licence and card.training_data
    case = plugin.generate(seed=3, channels=tuple(card.channels), shape=tuple(card.shape), spacing=tuple(card.spacing), tumour=True, device="cpu")
    assert case.arrays["seg"].shape == tuple(card.shape)


def test_gradient_checkpointing_gives_the_same_gradients():
    config = PGANConfig(**TINY)
    torch.manual_seed(2)
    g = Generator(config).train()
    z = torch.randn(2, config.latent_dim)
    grads = []
    for flag in (False, True):
        g.zero_grad()
        g.grad_checkpoint = flag
        g(z, 2, 0.5).pow(2).mean().backward()
        grads.append([p.grad.clone() for p in g.parameters() if p.grad is not None])
    assert len(grads[0]) == len(grads[1])
    for a, b in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(a, b)
