"""The poster's 2D DCGAN, scaled by a width so tests run at 32x32.

Generator: z -> fully connected ``width`` x 4 x 4 -> one 2x upsampling layer per octave (4x4 stride-2
transposed convolutions, or nearest resize then a 3x3 convolution) halving the channels, the last one to the
output channels; batch norm, LeakyReLU and dropout after each of those layers; a final 3x3 convolution with
tanh on the image channels (and a softmax over background/NCR/ED/ET when the model makes labels). At 256x256
and width 1024 this is the poster's 1024x4x4 -> 512x8x8 ... 32x128x128 -> C x256x256.

Critic (the poster's Table II, width-scaled): per octave a 3x3 convolution then a 4x4 stride-2 convolution,
channels doubling from ``width / 2^(octaves-1)`` to ``width`` at 4x4 (32 -> 1024 at 256x256; the table's 156
channels at 16x16 are read as 256, the only value on that doubling sequence), Gaussian noise added to every
layer's input while training, a fully connected output. Layer norm (GroupNorm with one group) replaces the
table's batch norm: batch norm couples the samples of a batch, which makes the per-sample gradient penalty of
WGAN-GP meaningless (Gulrajani et al. 2017, section 4).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import MedSynthError
from .options import UPSAMPLE_MODES

__all__ = ["DCGANConfig", "Generator", "Critic", "LABEL_CLASSES"]

LABEL_CLASSES = 4  # background, NCR, ED, ET (BraTS codes 0, 1, 2, 4)


@dataclass
class DCGANConfig:
    """Architecture parameters, stored in the model card's ``architecture``."""

    resolution: int = 256
    image_channels: list[str] = field(default_factory=lambda: ["flair"])
    labels: bool = False
    latent_dim: int = 128
    width: int = 1024
    upsample: str = "resize"
    dropout: float = 0.1
    critic_noise: float = 0.1
    name: str = "dcgan2d"
    version: int = 1

    def __post_init__(self) -> None:
        r = self.resolution
        if r < 8 or r > 1024 or r & (r - 1):
            raise MedSynthError(f"The dcgan2d resolution must be a power of two from 8 to 1024, not {r}.")
        if self.upsample not in UPSAMPLE_MODES:
            raise MedSynthError(f"The dcgan2d upsampling must be one of {', '.join(UPSAMPLE_MODES)}, not {self.upsample}.")
        if not self.image_channels:
            raise MedSynthError("A dcgan2d model needs at least one image channel (t1, t1ce, t2 or flair).")
        if self.width >> (self.octaves - 1) < 1:
            raise MedSynthError(f"--width {self.width} is too small for {r}x{r}; give at least {2 ** (self.octaves - 1)}.")

    @property
    def octaves(self) -> int:
        return int(math.log2(self.resolution)) - 2

    @property
    def out_channels(self) -> int:
        return len(self.image_channels) + (LABEL_CLASSES if self.labels else 0)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict) -> DCGANConfig:
        known = set(DCGANConfig.__dataclass_fields__)
        return DCGANConfig(**{k: v for k, v in data.items() if k in known})


def _up(cin: int, cout: int, mode: str) -> nn.Module:
    if mode == "transposed":
        return nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1)
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, cout, 3, padding=1))


class Generator(nn.Module):
    """z (B, latent) -> (B, out_channels, R, R): images in [-1, 1], label classes as probabilities."""

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        self.config = config
        w, c = config.width, config.out_channels
        self.fc = nn.Linear(config.latent_dim, w * 16)
        self.fc_post = nn.Sequential(nn.BatchNorm2d(w), nn.LeakyReLU(0.2), nn.Dropout(config.dropout))
        layers = []
        for i in range(1, config.octaves + 1):
            cin, cout = w >> (i - 1), (w >> i if i < config.octaves else c)
            layers += [_up(cin, cout, config.upsample), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2), nn.Dropout(config.dropout)]
        self.body = nn.Sequential(*layers)
        self.to_out = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.fc_post(self.fc(z).view(z.shape[0], self.config.width, 4, 4))
        x = self.to_out(self.body(x))
        k = len(self.config.image_channels)
        if not self.config.labels:
            return torch.tanh(x)
        return torch.cat([torch.tanh(x[:, :k]), torch.softmax(x[:, k:], dim=1)], dim=1)


class NoisyConv(nn.Module):
    """Gaussian noise on the input (training only), convolution, layer norm, LeakyReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, noise: float) -> None:
        super().__init__()
        self.noise = noise
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=1)
        self.norm = nn.GroupNorm(1, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.noise > 0:
            x = x + self.noise * torch.randn_like(x)
        return F.leaky_relu(self.norm(self.conv(x)), 0.2)


class Critic(nn.Module):
    """(B, out_channels, R, R) -> (B,) Wasserstein critic scores."""

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        n, w, noise = config.octaves, config.width, config.critic_noise
        widths = [w >> (n - 1 - k) for k in range(n)]
        layers, cin = [], config.out_channels
        for cout in widths:
            layers += [NoisyConv(cin, cout, 3, 1, noise), NoisyConv(cout, cout, 4, 2, noise)]
            cin = cout
        self.body = nn.Sequential(*layers)
        self.noise = noise
        self.fc = nn.Linear(w * 16, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.body(x).flatten(1)
        if self.training and self.noise > 0:
            x = x + self.noise * torch.randn_like(x)
        return self.fc(x).squeeze(1)
