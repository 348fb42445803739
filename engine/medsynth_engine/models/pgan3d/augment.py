"""DiffAugment in 3D (Zhao et al. 2020, https://arxiv.org/abs/2006.10738) for limited data.

Both real and generated volumes are augmented (colour: brightness, contrast; translation; cutout) before
the discriminator sees them, differentiably, so the discriminator cannot simply memorise a few hundred
subjects. Parameters are drawn first (for the whole global batch, from the training generator) and then
applied by a deterministic function: a run is replayable and every process of a distributed run slices
the same draws.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["draw_augment", "apply_augment", "slice_params"]

TRANSLATE = 1 / 8
CUTOUT = 1 / 2


def draw_augment(batch: int, resolution: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    shift = max(1, int(resolution * TRANSLATE))
    return {
        "brightness": torch.rand(batch, generator=generator) - 0.5,
        "contrast": torch.rand(batch, generator=generator) + 0.5,
        "shift": torch.randint(-shift, shift + 1, (batch, 3), generator=generator),
        "cut_centre": torch.randint(0, resolution, (batch, 3), generator=generator),
    }


def slice_params(params: dict[str, torch.Tensor], part: slice) -> dict[str, torch.Tensor]:
    return {k: v[part] for k, v in params.items()}


def apply_augment(x: torch.Tensor, params: dict[str, torch.Tensor], image_channels: int) -> torch.Tensor:
    """Augment (B, C, R, R, R): colour on the first ``image_channels`` channels, geometry on all."""
    b, c, r = x.shape[0], x.shape[1], x.shape[2]
    dims = (1, 2, 3, 4)
    images = x[:, :image_channels]
    brightness = params["brightness"].to(x.device, x.dtype).view(b, 1, 1, 1, 1)
    contrast = params["contrast"].to(x.device, x.dtype).view(b, 1, 1, 1, 1)
    mean = images.mean(dim=dims, keepdim=True)
    images = (images - mean) * contrast + mean + brightness
    x = torch.cat([images, x[:, image_channels:]], dim=1)
    # translation with edge padding (the edge is background), one crop per sample
    pad = int(params["shift"].abs().max().item()) if b else 0
    if pad:
        padded = F.pad(x, (pad,) * 6, mode="replicate")
        crops = []
        for i in range(b):
            sx, sy, sz = (int(v) for v in params["shift"][i])
            crops.append(padded[i, :, pad - sx : pad - sx + r, pad - sy : pad - sy + r, pad - sz : pad - sz + r])
        x = torch.stack(crops)
    # cutout: a cube of half the side filled with background (-1 images, background label class)
    half = max(1, int(r * CUTOUT)) // 2
    grid = torch.arange(r, device=x.device)
    keep = torch.ones(b, 1, r, r, r, device=x.device, dtype=x.dtype)
    for i in range(b):
        cx, cy, cz = (int(v) for v in params["cut_centre"][i])
        inside = [((grid - cc).abs() < half) for cc in (cx, cy, cz)]
        keep[i, 0] = 1.0 - (inside[0].view(r, 1, 1) & inside[1].view(1, r, 1) & inside[2].view(1, 1, r)).to(x.dtype)
    background = torch.zeros(1, c, 1, 1, 1, device=x.device, dtype=x.dtype)
    background[:, :image_channels] = -1.0
    if c > image_channels:
        background[:, image_channels] = 1.0
    return x * keep + background * (1.0 - keep)
