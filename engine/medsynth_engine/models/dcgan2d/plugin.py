"""The dcgan2d model plugin: a model folder (card + safetensors) -> single 2D slices.

Each case is one axial slice, (X, Y) arrays on the card's in-plane grid with a RAS affine whose third axis is
the training slices' thickness; image channels come back on the training data's intensity scale (int16),
labels as BraTS codes (uint8). The same seed gives the same pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...contract import ModelPlugin, SynthCase
from ...errors import MedSynthError
from ...modelfile import load_model_folder
from ..slices2d.output import slice_affine, to_physical
from .network import DCGANConfig, Generator

__all__ = ["DCGAN2DModel"]

PREFIX = "generator."


class DCGAN2DModel(ModelPlugin):
    """A trained dcgan2d model folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.card, tensors = load_model_folder(self.folder)
        self.config = DCGANConfig.from_dict(self.card.architecture)
        self.generator = Generator(self.config).eval().requires_grad_(False)
        try:
            self.generator.load_state_dict({k[len(PREFIX) :]: v for k, v in tensors.items() if k.startswith(PREFIX)})
        except RuntimeError:
            raise MedSynthError(f"The weights in {folder} do not fit the dcgan2d architecture its card describes.") from None
        self.thickness = float(self.card.preprocessing.get("slice_thickness", self.card.spacing[0]))
        self._device: torch.device | None = None

    def generate(
        self, *, seed: int, channels: tuple[str, ...], shape: tuple[int, ...], spacing: tuple[float, ...], tumour: bool, device: Any
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
            affine=slice_affine(tuple(shape), tuple(spacing), self.thickness),
            params={"latent_seed": int(seed), "model": self.id},
        )
