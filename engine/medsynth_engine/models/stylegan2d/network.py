"""StyleGAN2's generator and residual discriminator (Karras et al. 2020, "Analyzing and Improving the Image
Quality of StyleGAN", config F), in plain torch and scaled by a width so tests run at 32x32.

Generator: a mapping network (z -> w, ``mapping_layers`` equalised fully connected layers at 1/100 learning rate)
and a synthesis network from a learned 4x4 constant, two modulated/demodulated 3x3 convolutions per octave
(the first after a bilinear 2x upsampling: the paper's transposed convolution plus FIR blur, without a custom
op), a scaled noise input after every convolution, and skip-connection toRGB outputs summed across octaves.
``w_avg`` tracks the mean w for the truncation trick. Discriminator: fromRGB, residual blocks (two 3x3
convolutions and a 2x average-pool downsampling, a 1x1 skip, sum / sqrt 2), minibatch standard deviation, a
3x3 convolution and two fully connected layers. Every layer uses equalised learning rate.

Output channels: the image channels, then (with labels) one continuous tumour channel (``labels.py``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import MedSynthError
from .labels import ENCODINGS, label_channels

__all__ = ["StyleGANConfig", "Generator", "Discriminator", "MappingNetwork", "ModulatedConv2d"]

GAIN = math.sqrt(2.0)  # keeps the variance of activations after leaky ReLU (0.2)
NOISE_MODES = ("random", "const")


@dataclass
class StyleGANConfig:
    """Architecture parameters, stored in the model card's ``architecture``."""

    resolution: int = 128
    image_channels: list[str] = field(default_factory=lambda: ["t1", "t1ce", "t2", "flair"])
    labels: bool = True
    width: int = 512
    mapping_layers: int = 8
    #: how the label is drawn (labels.py): "levels" (one channel; models before 2026-12-01) or "one-hot" (four)
    label_encoding: str = "levels"
    name: str = "stylegan2d"
    version: int = 1

    def __post_init__(self) -> None:
        r = self.resolution
        if r < 32 or r > 256 or r & (r - 1):
            raise MedSynthError(f"The stylegan2d resolution must be 32, 64, 128 or 256, not {r}.")
        if not self.image_channels:
            raise MedSynthError("A stylegan2d model needs at least one image channel (t1, t1ce, t2 or flair).")
        if self.width < 8:
            raise MedSynthError(f"--width must be at least 8 for stylegan2d, not {self.width}.")
        if not 1 <= self.mapping_layers <= 16:
            raise MedSynthError(f"--mapping-layers must be 1 to 16, not {self.mapping_layers}.")
        if self.label_encoding not in ENCODINGS:
            raise MedSynthError(f"--label-encoding must be {' or '.join(ENCODINGS)}, not {self.label_encoding}.")

    @property
    def w_dim(self) -> int:
        """z and w have the width's size, capped at the paper's 512."""
        return min(self.width, 512)

    @property
    def num_ws(self) -> int:
        """One w per convolution plus the last toRGB (the paper's 14 at 256x256)."""
        return 2 * int(math.log2(self.resolution)) - 2

    @property
    def out_channels(self) -> int:
        return len(self.image_channels) + (label_channels(self.label_encoding) if self.labels else 0)

    def channels(self, res: int) -> int:
        """Feature maps at ``res``: the width up to 32x32, then halving per octave (at least 8)."""
        return max(8, min(self.width, self.width * 32 // res))

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict) -> StyleGANConfig:
        known = set(StyleGANConfig.__dataclass_fields__)
        return StyleGANConfig(**{k: v for k, v in data.items() if k in known})


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate (weights scaled at run time, Karras et al. 2018)."""

    def __init__(self, cin: int, cout: int, *, bias_init: float = 0.0, lr_mul: float = 1.0, act: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin) / lr_mul)
        self.bias = nn.Parameter(torch.full((cout,), float(bias_init)))
        self.scale, self.lr_mul, self.act = lr_mul / math.sqrt(cin), lr_mul, act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        return F.leaky_relu(x, 0.2) * GAIN if self.act else x


class EqualConv2d(nn.Module):
    """Convolution with equalised learning rate; optional bias and leaky ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, *, bias: bool = True, act: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout)) if bias else None
        self.scale, self.act, self.padding = 1.0 / math.sqrt(cin * kernel * kernel), act, kernel // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)
        return F.leaky_relu(x, 0.2) * GAIN if self.act else x


class MappingNetwork(nn.Module):
    """z -> w: second-moment normalisation, then ``layers`` fully connected layers; tracks ``w_avg``."""

    def __init__(self, dim: int, layers: int) -> None:
        super().__init__()
        self.net = nn.Sequential(*[EqualLinear(dim, dim, lr_mul=0.01, act=True) for _ in range(layers)])
        self.register_buffer("w_avg", torch.zeros(dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
        return self.net(z)


class ModulatedConv2d(nn.Module):
    """A convolution whose input channels are scaled per sample by a style from w, then (optionally) demodulated:
    each output channel's weights rescaled to unit norm, which replaces AdaIN's instance normalisation."""

    def __init__(self, cin: int, cout: int, kernel: int, w_dim: int, *, demodulate: bool = True, up: bool = False) -> None:
        super().__init__()
        self.affine = EqualLinear(w_dim, cin, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel))
        self.scale, self.demodulate, self.up, self.padding = 1.0 / math.sqrt(cin * kernel * kernel), demodulate, up, kernel // 2

    def modulated_weight(self, w: torch.Tensor) -> torch.Tensor:
        """(B, cout, cin, k, k): the weights each sample of the batch convolves with."""
        styles = self.affine(w)
        weight = self.weight[None] * self.scale * styles[:, None, :, None, None]
        if self.demodulate:
            weight = weight * torch.rsqrt(weight.square().sum(dim=(2, 3, 4), keepdim=True) + 1e-8)
        return weight

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        b, cin, h, wd = x.shape
        weight = self.modulated_weight(w)
        out = F.conv2d(x.reshape(1, b * cin, h, wd), weight.reshape(-1, cin, *weight.shape[3:]), padding=self.padding, groups=b)
        return out.reshape(b, -1, h, wd)


class SynthesisLayer(nn.Module):
    """Modulated 3x3 convolution, per-pixel noise scaled by a learned strength, bias, leaky ReLU."""

    def __init__(self, cin: int, cout: int, w_dim: int, res: int, *, up: bool = False) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, 3, w_dim, up=up)
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.register_buffer("noise_const", torch.randn(1, 1, res, res))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str) -> torch.Tensor:
        x = self.conv(x, w)
        noise = torch.randn_like(x[:, :1]) if noise_mode == "random" else self.noise_const
        x = x + noise * self.noise_strength + self.bias[None, :, None, None]
        return F.leaky_relu(x, 0.2) * GAIN


class ToRGB(nn.Module):
    """1x1 modulated convolution without demodulation: the block's contribution to the output channels."""

    def __init__(self, cin: int, cout: int, w_dim: int) -> None:
        super().__init__()
        self.conv = ModulatedConv2d(cin, cout, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return self.conv(x, w) + self.bias[None, :, None, None]


class Generator(nn.Module):
    """z (B, w_dim) -> (B, out_channels, R, R); ``mapping`` and ``synthesis`` are also callable apart."""

    def __init__(self, config: StyleGANConfig) -> None:
        super().__init__()
        self.config = config
        dim, out = config.w_dim, config.out_channels
        self.mapping = MappingNetwork(dim, config.mapping_layers)
        self.const = nn.Parameter(torch.randn(config.channels(4), 4, 4))
        self.layers, self.to_rgbs = nn.ModuleList(), nn.ModuleList()
        self.layers.append(SynthesisLayer(config.channels(4), config.channels(4), dim, 4))
        self.to_rgbs.append(ToRGB(config.channels(4), out, dim))
        res = 8
        while res <= config.resolution:
            cin, cout = config.channels(res // 2), config.channels(res)
            self.layers.append(SynthesisLayer(cin, cout, dim, res, up=True))
            self.layers.append(SynthesisLayer(cout, cout, dim, res))
            self.to_rgbs.append(ToRGB(cout, out, dim))
            res *= 2

    def ws(self, z: torch.Tensor, psi: float = 1.0) -> torch.Tensor:
        """(B, num_ws, w_dim): w broadcast to every layer, truncated towards ``w_avg`` by ``psi`` (1: none)."""
        w = self.mapping(z)
        if psi != 1.0:
            w = self.mapping.w_avg.lerp(w, psi)
        return w[:, None].repeat(1, self.config.num_ws, 1)

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "random") -> torch.Tensor:
        """Images from per-layer ws; ``noise_mode`` ``const`` uses each layer's fixed noise (deterministic)."""
        if noise_mode not in NOISE_MODES:
            raise MedSynthError(f"noise_mode must be one of {', '.join(NOISE_MODES)}, not {noise_mode!r}.")
        x = self.const[None].repeat(ws.shape[0], 1, 1, 1)
        x = self.layers[0](x, ws[:, 0], noise_mode)
        img = self.to_rgbs[0](x, ws[:, 1])
        for k, to_rgb in enumerate(self.to_rgbs[1:]):
            i = 1 + 2 * k  # layers 1, 2 | 3, 4 | ...; ws index = layer index, toRGB after the block's second layer
            x = self.layers[i](x, ws[:, i], noise_mode)
            x = self.layers[i + 1](x, ws[:, i + 1], noise_mode)
            img = F.interpolate(img, scale_factor=2, mode="bilinear", align_corners=False) + to_rgb(x, ws[:, i + 2])
        return img

    def forward(self, z: torch.Tensor, psi: float = 1.0, noise_mode: str = "random") -> torch.Tensor:
        return self.synthesis(self.ws(z, psi), noise_mode)


class DiscriminatorBlock(nn.Module):
    """Two 3x3 convolutions and a 2x downsampling, plus a downsampled 1x1 skip; the sum scaled by 1/sqrt(2)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv0 = EqualConv2d(cin, cin, 3)
        self.conv1 = EqualConv2d(cin, cout, 3)
        self.skip = EqualConv2d(cin, cout, 1, bias=False, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = self.skip(F.avg_pool2d(x, 2))
        x = F.avg_pool2d(self.conv1(self.conv0(x)), 2)
        return (x + skip) / math.sqrt(2.0)


def minibatch_stddev(x: torch.Tensor, group: int = 4) -> torch.Tensor:
    """Append one feature map: the standard deviation of each feature over a group of samples, averaged."""
    b, c, h, w = x.shape
    g = min(group, b)
    while b % g:
        g -= 1
    y = x.reshape(g, -1, c, h, w)
    y = (y.var(dim=0, unbiased=False) + 1e-8).sqrt().mean(dim=(1, 2, 3))
    y = y.reshape(-1, 1, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


class Discriminator(nn.Module):
    """(B, out_channels, R, R) -> (B,) logits (real > 0)."""

    def __init__(self, config: StyleGANConfig) -> None:
        super().__init__()
        self.from_rgb = EqualConv2d(config.out_channels, config.channels(config.resolution), 1)
        blocks, res = [], config.resolution
        while res > 4:
            blocks.append(DiscriminatorBlock(config.channels(res), config.channels(res // 2)))
            res //= 2
        self.blocks = nn.Sequential(*blocks)
        c = config.channels(4)
        self.conv = EqualConv2d(c + 1, c, 3)
        self.fc = EqualLinear(c * 16, c, act=True)
        self.out = EqualLinear(c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.from_rgb(x))
        x = self.conv(minibatch_stddev(x))
        return self.out(self.fc(x.flatten(1))).squeeze(1)
