"""The l2i3d renderer: MONAI's 3D UNet from the one-hot label map to a per-voxel Gaussian over the MR sequences."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from monai.networks.nets import UNet

from ...errors import MedSynthError
from .labels import N_CLASSES

__all__ = ["L2IConfig", "build_renderer", "split_output", "noise_scales", "LOG_SIGMA_RANGE"]

#: The predicted log standard deviation is clamped here (images are in [-1, 1]).
LOG_SIGMA_RANGE = (-6.0, 0.5)


@dataclass
class L2IConfig:
    """Architecture of an l2i3d model, as stored in its card.

    Args:
        channels: the MR sequences rendered, in output order.
        widths: UNet feature widths per level; strides: its down-sampling strides (one fewer).
        resolution: side of the model's cubic grid; patch: side of the training crops.
        temperature: the default scale of the sampled noise (1: the learned spread; 0: the mean image).
        temperatures: per sequence, the scale calibrated after training (``calibrate``): the one whose samples
            have the fine-detail energy of the real images (None: ``temperature`` for all).
    """

    channels: list[str] = field(default_factory=lambda: ["t1", "t1ce", "t2", "flair"])
    widths: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    strides: list[int] = field(default_factory=lambda: [2, 2, 2])
    num_res_units: int = 1
    resolution: int = 64
    patch: int = 32
    temperature: float = 1.0
    temperatures: list[float] | None = None
    name: str = "l2i3d"
    version: int = 1

    def __post_init__(self) -> None:
        if len(self.strides) != len(self.widths) - 1:
            raise MedSynthError(f"An l2i3d network needs one stride fewer than widths, not {self.strides} for {self.widths}.")
        step = 1
        for s in self.strides:
            step *= s
        if self.patch % step or self.resolution % step or self.patch > self.resolution:
            raise MedSynthError(f"The l2i3d patch ({self.patch}) and grid ({self.resolution}) must be multiples of {step}, the patch no larger.")
        if not self.channels:
            raise MedSynthError("An l2i3d model renders at least one MR sequence.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> L2IConfig:
        known = set(L2IConfig.__dataclass_fields__)
        return L2IConfig(**{k: v for k, v in data.items() if k in known})


def build_renderer(config: L2IConfig) -> UNet:
    """Batch norm, not instance norm: the whole grid at generation time must see the statistics of training crops."""
    return UNet(
        spatial_dims=3,
        in_channels=N_CLASSES,
        out_channels=2 * len(config.channels),
        channels=tuple(config.widths),
        strides=tuple(config.strides),
        num_res_units=config.num_res_units,
        norm="batch",
    )


def split_output(output: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean, log sigma) of a network output (N, 2C, ...), log sigma clamped to ``LOG_SIGMA_RANGE``."""
    mean, log_sigma = output.chunk(2, dim=1)
    return mean, log_sigma.clamp(*LOG_SIGMA_RANGE)


def noise_scales(config: L2IConfig) -> list[float]:
    """The noise scale of each rendered sequence."""
    if config.temperatures is not None and len(config.temperatures) == len(config.channels):
        return [float(t) for t in config.temperatures]
    return [float(config.temperature)] * len(config.channels)
