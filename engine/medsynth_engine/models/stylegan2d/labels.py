"""The tumour label as one continuous channel, as the seed study's five-channel StyleGANs made it.

BraTS codes 0, 1, 2, 4 become evenly spaced levels in [-1, 1] (-1, -1/3, 1/3, 1), so the generator draws the
label like a fifth image; on output each pixel takes the code of the nearest level. Evenly spaced levels give
every class the same margin; the codes' own spacing would squeeze background, NCR and ED together.
"""

from __future__ import annotations

import torch

__all__ = ["LEVELS", "encode", "classes", "one_hot_scores"]

#: The level of each BraTS code, in the order of ``data.preprocess.LABEL_CODES`` (0, 1, 2, 4).
LEVELS = torch.tensor([-1.0, -1.0 / 3.0, 1.0 / 3.0, 1.0])


def encode(codes: torch.Tensor) -> torch.Tensor:
    """(N, X, Y) BraTS codes -> (N, 1, X, Y) levels."""
    index = torch.bucketize(codes.long(), torch.tensor([1, 2, 4]), right=True)  # 0->0, 1->1, 2->2, 4->3
    return LEVELS[index][:, None]


def classes(channel: torch.Tensor) -> torch.Tensor:
    """Continuous label values (any shape) -> class indices 0..3 (background, NCR, ED, ET): the nearest level."""
    return (channel[..., None] - LEVELS.to(channel.device)).abs().argmin(dim=-1)


def one_hot_scores(output: torch.Tensor, image_channels: int) -> torch.Tensor:
    """(N, k + 1, X, Y) network output -> (N, k + 4, X, Y): images, then the quantised label as one-hot classes
    (the form the shared 2D output and mosaic code reads)."""
    index = classes(output[:, image_channels])
    one_hot = torch.nn.functional.one_hot(index, 4).permute(0, 3, 1, 2).to(output.dtype)
    return torch.cat([output[:, :image_channels], one_hot], dim=1)
