"""The channel models' network: MONAI's 3D UNet on the eight-channel MR input (see ``inputs``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from monai.networks.nets import UNet

from ...errors import MedSynthError
from .inputs import SEQUENCES

__all__ = ["ChannelNetConfig", "build_unet"]


@dataclass
class ChannelNetConfig:
    """Architecture of a segnet or mr2ct model, as stored in its card.

    Args:
        name: ``segnet`` (4 class logits: background, NCR, ED, ET) or ``mr2ct`` (1 output: HU / 1000).
        out_channels: network outputs.
        channels: UNet feature widths per level.
        strides: UNet down-sampling strides (one fewer than ``channels``).
        num_res_units: residual units per UNet block.
        patch: training patch side in voxels; also the sliding-window size at inference.
        sequences: MR sequences of the input, in order (each with its presence map).
        norm: ``instance`` (segnet: per-patch statistics suit classification) or ``batch`` (mr2ct: a regression
            of absolute HU must not depend on what else a sliding window holds, which instance norm makes it do).
    """

    name: str
    out_channels: int
    channels: list[int] = field(default_factory=lambda: [16, 32, 64, 128])
    strides: list[int] = field(default_factory=lambda: [2, 2, 2])
    num_res_units: int = 1
    patch: int = 64
    sequences: list[str] = field(default_factory=lambda: list(SEQUENCES))
    norm: str = "instance"
    version: int = 1

    def __post_init__(self) -> None:
        if len(self.strides) != len(self.channels) - 1:
            raise MedSynthError(f"A {self.name} network needs one stride fewer than widths, not {self.strides} for {self.channels}.")
        step = 1
        for s in self.strides:
            step *= s
        if self.patch % step:
            raise MedSynthError(f"The {self.name} patch side must be a multiple of {step}, not {self.patch}.")
        if self.norm not in ("instance", "batch"):
            raise MedSynthError(f"A {self.name} network's norm must be instance or batch, not {self.norm}.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ChannelNetConfig:
        known = set(ChannelNetConfig.__dataclass_fields__)
        return ChannelNetConfig(**{k: v for k, v in data.items() if k in known})


def build_unet(config: ChannelNetConfig) -> UNet:
    return UNet(
        spatial_dims=3,
        in_channels=2 * len(config.sequences),
        out_channels=config.out_channels,
        channels=tuple(config.channels),
        strides=tuple(config.strides),
        num_res_units=config.num_res_units,
        norm=config.norm,
    )
