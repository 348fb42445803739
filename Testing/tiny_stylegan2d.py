"""A stylegan2d model folder with untrained weights (32x32, width 16): a real card and safetensors the family's
plugin loads and generates from, made in a fraction of a second, for tests of what surrounds the model (jobs,
panel), not of its quality."""

from __future__ import annotations

from pathlib import Path

SCALE = {"low": 0.0, "high": 1000.0}


def untrained_stylegan2d(folder: Path, image_channels: tuple[str, ...] = ("t1", "t1ce", "t2", "flair"), seed: int = 0) -> Path:
    """Write the model folder ``folder`` (its card id ``stylegan2d-<folder name>``) and return it."""
    import torch
    from medsynth_engine.modelfile import ModelCard, save_model_folder
    from medsynth_engine.models.stylegan2d.network import Generator, StyleGANConfig

    config = StyleGANConfig(resolution=32, width=16, image_channels=list(image_channels), labels=True, mapping_layers=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = Generator(config)
    card = ModelCard(
        id=f"stylegan2d-{Path(folder).name}", kind="gan", architecture=config.to_dict(), channels=[*image_channels, "seg"],
        shape=[32, 32], spacing=[6.0, 6.0], training_data="none: untrained weights for tests", licence="CC0 (test weights)",
        metrics={}, weights={"source": "random initialisation"},
        preprocessing={"slice_thickness": 6.0, "normalisation": {"range": [-1.0, 1.0], "channels": {c: SCALE for c in image_channels}}},
    )
    save_model_folder(Path(folder), card, {f"generator.{k}": v for k, v in generator.state_dict().items()})
    return Path(folder)
