"""The pgan3d model plugin: loads a model folder (card + safetensors) and samples cases from it.

The generator's EMA weights sample the volume at the card's shape and spacing; image channels are mapped
from [-1, 1] back to the training data's intensity scale recorded in the card (int16), label channels
become BraTS codes (uint8). The same seed gives the same voxels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from MedSynthLib.conventions import LABEL_CHANNEL

from ...contract import ModelPlugin, SynthCase
from ...data.preprocess import grid_affine
from ...errors import MedSynthError
from ...modelfile import ModelCard, load_model_folder
from .network import Generator, PGANConfig

__all__ = ["PGAN3DModel", "LABEL_CODES", "to_physical"]

LABEL_CODES = np.array([0, 1, 2, 4], dtype=np.uint8)
GENERATOR_PREFIX = "generator."


def to_physical(output: np.ndarray, card: ModelCard) -> dict[str, np.ndarray]:
    """Network output (C, X, Y, Z) -> arrays by channel: images on the card's intensity scale, labels as BraTS codes."""
    config = PGANConfig.from_dict(card.architecture)
    scales = card.preprocessing.get("normalisation", {}).get("channels", {})
    arrays: dict[str, np.ndarray] = {}
    for i, channel in enumerate(config.image_channels):
        scale = scales.get(channel, {"low": -1.0, "high": 1.0})
        unit = (np.clip(output[i], -1.0, 1.0) + 1.0) / 2.0
        value = unit * (scale["high"] - scale["low"]) + scale["low"]
        arrays[channel] = np.clip(np.rint(value), -32768, 32767).astype(np.int16)
    if config.labels:
        k = len(config.image_channels)
        arrays[LABEL_CHANNEL] = LABEL_CODES[np.argmax(output[k:], axis=0)]
    return arrays


class PGAN3DModel(ModelPlugin):
    """A trained pgan3d model folder."""

    def __init__(self, folder: Path, card: ModelCard | None = None) -> None:
        self.folder = Path(folder)
        self.card, tensors = load_model_folder(self.folder)
        if card is not None and card.architecture != self.card.architecture:
            raise MedSynthError(f"The model folder {folder} changed while it was being loaded; try again.")
        self.config = PGANConfig.from_dict(self.card.architecture)
        state = {k[len(GENERATOR_PREFIX) :]: v for k, v in tensors.items() if k.startswith(GENERATOR_PREFIX)}
        self.generator = Generator(self.config).eval().requires_grad_(False)
        try:
            self.generator.load_state_dict(state)
        except RuntimeError:
            raise MedSynthError(f"The weights in {folder} do not fit the pgan3d architecture its card describes.") from None
        self._device: torch.device | None = None

    def generate(
        self,
        *,
        seed: int,
        channels: tuple[str, ...],
        shape: tuple[int, int, int],
        spacing: tuple[float, float, float],
        tumour: bool,
        device: Any,
    ) -> SynthCase:
        if not tumour and self.config.labels:
            raise MedSynthError(f"Model '{self.id}' draws tumours as its training data had them; leave out --no-tumour.")
        device = torch.device(device or "cpu")
        if self._device != device:
            self.generator.to(device)
            self._device = device
        z = torch.randn(1, self.config.latent_dim, generator=torch.Generator().manual_seed(int(seed)))
        with torch.no_grad():
            output = self.generator(z.to(device)).float().cpu().numpy()[0]
        arrays = to_physical(output, self.card)
        return SynthCase(
            arrays={c: arrays[c] for c in channels},
            affine=grid_affine(shape, spacing),
            params={"latent_seed": int(seed), "model": self.id},
        )

