"""The 3D progressive-growing GAN (Karras et al. 2018, https://arxiv.org/abs/1710.10196) in 3D.

Both networks grow from 4^3 to the target resolution; during a fade-in the new block's output is blended
with the upsampled (generator) or downsampled (discriminator) output of the previous stage by ``alpha``.
Pixel norm, minibatch standard deviation and equalised learning rate as in the paper. Upsampling is
trilinear interpolation followed by convolution, never transposed convolution (no checkerboard artefacts).

The generator's output holds the image channels (linear) and, when the model makes labels, a softmax over
the label classes (background, NCR, ED, ET), so images and labels are drawn jointly and agree.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ...errors import MedSynthError

__all__ = ["PGANConfig", "Generator", "Discriminator", "upsample", "downsample", "stage_resolution", "n_stages"]

LABEL_CLASSES = 4  # background, NCR, ED, ET (BraTS codes 0, 1, 2, 4)
MIN_RES, MAX_RES = 4, 256


def n_stages(resolution: int) -> int:
    """Number of stages from 4^3 to ``resolution``^3 (a power of two)."""
    return int(math.log2(resolution)) - 1


def stage_resolution(stage: int) -> int:
    return 4 * 2**stage


@dataclass
class PGANConfig:
    """Architecture parameters, stored in the model card's ``architecture``.

    Args:
        resolution: final cube side, a power of two from 8 to 256.
        image_channels: MR channels made, canonical names (``t1``...).
        labels: whether the tumour label map is made (as 4 softmax channels).
        latent_dim: size of the latent vector.
        base_width: width at 4^3; each later stage halves it, capped by ``max_width`` and floored at ``min_width``.
        mbstd_group: minibatch-stddev group size over contiguous samples; 2 keeps a multi-process run equal
            to a single process whenever each process holds an even number of samples.
        padding: the generator's convolution padding, ``replicate`` (no edge frames) or ``zeros``.
    """

    resolution: int = 64
    image_channels: list[str] = field(default_factory=lambda: ["t1", "t1ce", "t2", "flair"])
    labels: bool = True
    latent_dim: int = 128
    base_width: int = 128
    max_width: int = 128
    min_width: int = 16
    mbstd_group: int = 2
    padding: str = "replicate"
    name: str = "pgan3d"
    version: int = 1

    def __post_init__(self) -> None:
        r = self.resolution
        if r < 8 or r > MAX_RES or r & (r - 1):
            raise MedSynthError(f"The pgan3d resolution must be a power of two from 8 to {MAX_RES}, not {r}.")
        if not self.image_channels:
            raise MedSynthError("A pgan3d model needs at least one image channel (t1, t1ce, t2 or flair).")
        if self.padding not in ("replicate", "zeros"):
            raise MedSynthError(f"The pgan3d padding must be replicate or zeros, not {self.padding}.")
        if self.latent_dim < 1 or self.base_width < 1 or self.mbstd_group < 1:
            raise MedSynthError("The pgan3d latent size, width and minibatch group must be positive.")

    @property
    def stages(self) -> int:
        return n_stages(self.resolution)

    @property
    def out_channels(self) -> int:
        return len(self.image_channels) + (LABEL_CLASSES if self.labels else 0)

    def width(self, stage: int) -> int:
        return max(self.min_width, min(self.max_width, self.base_width >> stage))

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict) -> PGANConfig:
        known = set(PGANConfig.__dataclass_fields__)
        return PGANConfig(**{k: v for k, v in data.items() if k in known})


def upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="trilinear", align_corners=False)


def downsample(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    return F.avg_pool3d(x, factor) if factor > 1 else x


class EqConv3d(nn.Module):
    """Conv3d with equalised learning rate: N(0,1) weights scaled by He's constant at run time."""

    def __init__(self, cin: int, cout: int, kernel: int, replicate: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin, kernel, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = (cin * kernel**3) ** -0.5
        self.padding = kernel // 2
        self.replicate = replicate and self.padding > 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.replicate:  # the generator's edges continue the volume instead of seeing zeros (no frame artefacts)
            return F.conv3d(F.pad(x, (self.padding,) * 6, mode="replicate"), self.weight * self.scale, self.bias)
        return F.conv3d(x, self.weight * self.scale, self.bias, padding=self.padding)


class EqLinear(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(cout, cin))
        self.bias = nn.Parameter(torch.zeros(cout))
        self.scale = cin**-0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias)


def pixel_norm(x: torch.Tensor) -> torch.Tensor:
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.2)


class GBlock(nn.Module):
    def __init__(self, cin: int, cout: int, first: bool = False, latent_dim: int = 0, replicate: bool = True) -> None:
        super().__init__()
        self.first = first
        self.cout = cout
        if first:
            self.dense = EqLinear(latent_dim, cout * 64)
            self.conv1 = None
        else:
            self.conv1 = EqConv3d(cin, cout, 3, replicate)
        self.conv2 = EqConv3d(cout, cout, 3, replicate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.first:
            x = pixel_norm(_act(self.dense(pixel_norm(x)).view(x.shape[0], self.cout, 4, 4, 4)))
        else:
            x = pixel_norm(_act(self.conv1(upsample(x))))
        return pixel_norm(_act(self.conv2(x)))


class Generator(nn.Module):
    """Latent vector -> (B, out_channels, R, R, R) at the current stage's resolution R."""

    def __init__(self, config: PGANConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.width(s) for s in range(config.stages)]
        replicate = config.padding == "replicate"
        self.blocks = nn.ModuleList(
            [GBlock(0, widths[0], first=True, latent_dim=config.latent_dim, replicate=replicate)]
            + [GBlock(widths[s - 1], widths[s], replicate=replicate) for s in range(1, config.stages)]
        )
        self.to_out = nn.ModuleList([EqConv3d(w, config.out_channels, 1) for w in widths])
        self.grad_checkpoint = False

    def _output(self, stage: int, x: torch.Tensor) -> torch.Tensor:
        y = self.to_out[stage](x)
        if not self.config.labels:
            return y
        k = len(self.config.image_channels)
        return torch.cat([y[:, :k], torch.softmax(y[:, k:].float(), dim=1).to(y.dtype)], dim=1)

    def forward(self, z: torch.Tensor, stage: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        stage = self.config.stages - 1 if stage is None else stage
        x = z
        previous = None
        for s in range(stage + 1):
            if s == stage and alpha < 1.0 and s > 0:
                previous = x
            if self.grad_checkpoint and self.training and s > 0:
                x = checkpoint(self.blocks[s], x, use_reentrant=False)
            else:
                x = self.blocks[s](x)
        out = self._output(stage, x)
        if previous is not None:
            out = alpha * out + (1.0 - alpha) * upsample(self._output(stage - 1, previous))
        return out


class MinibatchStd(nn.Module):
    """Appends the mean standard deviation over contiguous groups of samples as one feature map."""

    def __init__(self, group: int) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, d, h, w = x.shape
        g = min(self.group, b)
        if b % g:
            g = 1
        y = x.float().view(b // g, g, c, d, h, w)
        std = torch.sqrt(y.var(dim=1, unbiased=False) + 1e-8).mean(dim=(1, 2, 3, 4))
        std = std.view(-1, 1, 1, 1, 1).repeat_interleave(g, dim=0).expand(b, 1, d, h, w)
        return torch.cat([x, std.to(x.dtype)], dim=1)


class DBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = EqConv3d(cin, cin, 3)
        self.conv2 = EqConv3d(cin, cout, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return downsample(_act(self.conv2(_act(self.conv1(x)))))


class Discriminator(nn.Module):
    """(B, channels, R, R, R) at the current stage -> one critic score per sample (Wasserstein)."""

    def __init__(self, config: PGANConfig) -> None:
        super().__init__()
        self.config = config
        widths = [config.width(s) for s in range(config.stages)]
        self.from_in = nn.ModuleList([EqConv3d(config.out_channels, w, 1) for w in widths])
        self.blocks = nn.ModuleList([nn.Identity()] + [DBlock(widths[s], widths[s - 1]) for s in range(1, config.stages)])
        w0 = widths[0]
        self.mbstd = MinibatchStd(config.mbstd_group)
        self.final_conv = EqConv3d(w0 + 1, w0, 3)
        self.final_dense = EqLinear(w0 * 64, w0)
        self.final_out = EqLinear(w0, 1)

    def forward(self, x: torch.Tensor, stage: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        stage = self.config.stages - 1 if stage is None else stage
        h = _act(self.from_in[stage](x))
        if stage > 0:
            h = self.blocks[stage](h)
            if alpha < 1.0:
                h = alpha * h + (1.0 - alpha) * _act(self.from_in[stage - 1](downsample(x)))
        for s in range(stage - 1, 0, -1):
            h = self.blocks[s](h)
        h = _act(self.final_conv(self.mbstd(h)))
        h = _act(self.final_dense(h.flatten(1)))
        return self.final_out(h).squeeze(1)
