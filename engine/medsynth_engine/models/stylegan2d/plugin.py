"""The stylegan2d model plugin: a model folder (card + safetensors) -> single 2D slices, with truncation and variations.

Each case is one axial slice, (X, Y) arrays on the card's in-plane grid with a RAS affine whose third axis is
the training slices' thickness; image channels on the training data's intensity scale (int16), the continuous
tumour channel quantised to BraTS codes (uint8). The EMA generator runs with its fixed noise, so a case depends
on its seed, ``truncation`` and ``like`` only: the same arguments give the same pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ...contract import ModelPlugin, SynthCase
from ...errors import MedSynthError
from ...modelfile import load_model_folder
from ..slices2d.output import slice_affine, to_physical
from .labels import one_hot_scores
from .network import Generator, StyleGANConfig
from .project import DEFAULT_STEPS, project, read_target

__all__ = ["StyleGAN2DModel"]

PREFIX = "generator."


class StyleGAN2DModel(ModelPlugin):
    """A trained stylegan2d model folder."""

    #: ``generate`` options beyond the contract's that ``generate_set`` passes when a request sets them.
    generate_options = ("truncation", "like")
    #: Adam steps of the projection behind ``like``.
    projection_steps = DEFAULT_STEPS

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.card, tensors = load_model_folder(self.folder)
        self.config = StyleGANConfig.from_dict(self.card.architecture)
        self.generator = Generator(self.config).eval().requires_grad_(False)
        try:
            self.generator.load_state_dict({k[len(PREFIX) :]: v for k, v in tensors.items() if k.startswith(PREFIX)})
        except RuntimeError:
            raise MedSynthError(f"The weights in {folder} do not fit the stylegan2d architecture its card describes.") from None
        self.thickness = float(self.card.preprocessing.get("slice_thickness", self.card.spacing[0]))
        self._device: torch.device | None = None
        self._projections: dict[tuple[str, str], torch.Tensor] = {}

    def _on(self, device: Any) -> torch.device:
        device = torch.device(device or "cpu")
        if self._device != device:
            self.generator.to(device)
            self._device = device
        return device

    def projection(self, like: Path, device: Any = None) -> torch.Tensor:
        """The w of the slice in the case folder ``like`` (projected once per folder and device, not once per case)."""
        device = self._on(device)
        key = (str(Path(like).resolve()), str(device))
        if key not in self._projections:
            self._projections[key] = project(self.generator, read_target(Path(like), self.card), self.projection_steps)[0]
        return self._projections[key]

    def generate(
        self,
        *,
        seed: int,
        channels: tuple[str, ...],
        shape: tuple[int, ...],
        spacing: tuple[float, ...],
        tumour: bool,
        device: Any,
        truncation: float = 1.0,
        like: Path | None = None,
    ) -> SynthCase:
        if not tumour and self.config.labels:
            raise MedSynthError(f"Model '{self.id}' draws tumours as its training data had them; leave out --no-tumour.")
        device = self._on(device)
        z = torch.randn(1, self.config.w_dim, generator=torch.Generator().manual_seed(int(seed))).to(device)
        with torch.no_grad():
            w_avg = self.generator.mapping.w_avg
            centre = w_avg[None] if like is None else self.projection(like, device)
            w = centre + truncation * (self.generator.mapping(z) - w_avg)
            output = self.generator.synthesis(w[:, None].repeat(1, self.config.num_ws, 1), noise_mode="const").float().cpu()
        k = len(self.config.image_channels)
        arrays = to_physical((one_hot_scores(output, k, self.config.label_encoding) if self.config.labels else output).numpy()[0], self.card)
        return SynthCase(
            arrays={c: arrays[c] for c in channels},
            affine=slice_affine(tuple(shape), tuple(spacing), self.thickness),
            params={"latent_seed": int(seed), "model": self.id, "truncation": truncation},
        )
