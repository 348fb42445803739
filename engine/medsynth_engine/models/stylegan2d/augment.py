"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative Adversarial Networks with
Limited Data"): differentiable augmentations applied to every image the discriminator sees, real and fake, each
applied with probability ``p``, and ``p`` steered by how much the discriminator overfits.

Geometric ops (x-flip, 90-degree rotations, integer translation, isotropic scaling, arbitrary rotation,
anisotropic scaling, fractional translation) are composed into one affine matrix per sample and applied to all
channels by one bilinear ``grid_sample`` with reflection padding (flips, quarter turns and whole-pixel shifts
land on pixel centres, so they are exact). Colour ops (brightness, contrast) touch the image channels only: the
continuous tumour channel is a label, not an intensity. The ranges are the paper's ``bgc`` pipeline.

The heuristic: r_t = E[sign(D(real))] over the last ``interval`` minibatches; p moves by
sign(r_t - target) * (images seen) / (speed_kimg * 1000), so it can go from 0 to 1 in ``speed_kimg`` thousand
images (500 in the paper). ``p`` and the running sums are buffers, so the trainer's checkpoint saves them and a
resumed run continues exactly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["AdaptiveAugment", "augment"]

XINT_MAX = 0.125  # integer translation, fraction of the image size
SCALE_STD = 0.2  # log2 of isotropic and anisotropic scale
XFRAC_STD = 0.125  # fractional translation, fraction of the image size
BRIGHTNESS_STD = 0.2
CONTRAST_STD = 0.5  # log2


def _gate(p: float, n: int, device: torch.device) -> torch.Tensor:
    """(n,) 1.0 where a sample gets the op (probability p), else 0.0."""
    return (torch.rand(n, device=device) < p).float()


def _matrix(rows: list[list[torch.Tensor | float]], n: int, device: torch.device) -> torch.Tensor:
    return torch.stack([torch.stack([torch.as_tensor(v, device=device).float().expand(n) for v in row], dim=-1) for row in rows], dim=-2)


def augment(x: torch.Tensor, p: float, image_channels: int) -> torch.Tensor:
    """``x`` (B, C, R, R) with each op applied per sample with probability ``p``; p = 0 returns ``x`` itself."""
    if p <= 0:
        return x
    n, device = x.shape[0], x.device
    one, zero = 1.0, 0.0
    flip = 1 - 2 * _gate(p, n, device) * torch.randint(0, 2, (n,), device=device)
    m = _matrix([[flip, zero, zero], [zero, one, zero], [zero, zero, one]], n, device)
    quarter = _gate(p, n, device) * torch.randint(0, 4, (n,), device=device) * (math.pi / 2)
    shift = _gate(p, n, device)[:, None] * torch.round((torch.rand(n, 2, device=device) * 2 - 1) * XINT_MAX * x.shape[-1])
    iso = torch.exp2(torch.randn(n, device=device) * SCALE_STD * _gate(p, n, device))
    angle = (torch.rand(n, device=device) * 2 - 1) * math.pi * _gate(p, n, device)
    aniso = torch.exp2(torch.randn(n, device=device) * SCALE_STD * _gate(p, n, device))
    frac = torch.randn(n, 2, device=device) * XFRAC_STD * 2 * _gate(p, n, device)[:, None]
    for theta in (quarter, angle):
        c, s = torch.cos(theta), torch.sin(theta)
        m = m @ _matrix([[c, -s, zero], [s, c, zero], [zero, zero, one]], n, device)
    pixel = 2.0 / x.shape[-1]  # one pixel in grid_sample's [-1, 1] coordinates
    m = m @ _matrix([[one, zero, shift[:, 0] * pixel], [zero, one, shift[:, 1] * pixel], [zero, zero, one]], n, device)
    m = m @ _matrix([[iso, zero, zero], [zero, iso, zero], [zero, zero, one]], n, device)
    m = m @ _matrix([[aniso, zero, zero], [zero, 1 / aniso, zero], [zero, zero, one]], n, device)
    m = m @ _matrix([[one, zero, frac[:, 0]], [zero, one, frac[:, 1]], [zero, zero, one]], n, device)
    grid = F.affine_grid(m[:, :2].to(x.dtype), list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    brightness = (torch.randn(n, device=device) * BRIGHTNESS_STD * _gate(p, n, device)).to(x.dtype)
    contrast = torch.exp2(torch.randn(n, device=device) * CONTRAST_STD * _gate(p, n, device)).to(x.dtype)
    images = (x[:, :image_channels] + brightness[:, None, None, None]) * contrast[:, None, None, None]
    return torch.cat([images, x[:, image_channels:]], dim=1)


class AdaptiveAugment(nn.Module):
    """The augmentation probability ``p`` and the overfitting heuristic that steers it (state in buffers)."""

    def __init__(self, image_channels: int, *, target: float = 0.6, speed_kimg: float = 500.0, interval: int = 4) -> None:
        super().__init__()
        self.image_channels, self.target, self.speed_kimg, self.interval = image_channels, target, speed_kimg, interval
        self.register_buffer("p", torch.zeros((), dtype=torch.float64))
        self.register_buffer("sign_sum", torch.zeros((), dtype=torch.float64))
        self.register_buffer("seen", torch.zeros((), dtype=torch.float64))  # real logits summed into sign_sum
        self.register_buffer("rt", torch.zeros((), dtype=torch.float64))  # the last r_t, for the loss log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return augment(x, float(self.p), self.image_channels)

    @torch.no_grad()
    def observe(self, real_logits: torch.Tensor) -> None:
        """Add one minibatch of the discriminator's logits on (augmented) real images."""
        self.sign_sum += real_logits.detach().sign().sum().double().cpu()
        self.seen += real_logits.numel()

    @torch.no_grad()
    def adjust(self, batch_size: int) -> None:
        """Move ``p`` by the heuristic over what was observed since the last adjustment, then start a new window."""
        if self.seen <= 0:
            return
        self.rt.copy_(self.sign_sum / self.seen)
        step = math.copysign(1.0, float(self.rt) - self.target) * batch_size * self.interval / (self.speed_kimg * 1000)
        self.p.copy_((self.p + step).clamp(0.0, 1.0))
        self.sign_sum.zero_()
        self.seen.zero_()
