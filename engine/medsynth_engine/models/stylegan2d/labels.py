"""The tumour label as the generator draws it: one continuous channel (``levels``) or four (``one-hot``).

``levels``, as the seed study's five-channel StyleGANs made it: BraTS codes 0, 1, 2, 4 become evenly spaced levels
in [-1, 1] (-1, -1/3, 1/3, 1) in one channel, and on output each pixel takes the code of the nearest level. Evenly
spaced levels give every class the same margin; the codes' own spacing would squeeze background, NCR and ED together.
Its weakness, measured on the CPU recipe (bench/results/validity.md): a generator that has not converged draws the
channel with too little amplitude (99.9th percentile 0.04 after 1,500 steps, never the 1/3 of oedema), so oedema
reads as necrosis and enhancing tumour is never drawn.

``one-hot`` (the default for new models since 2026-12-01): one channel per class (background, NCR, ED, ET) at
-1 or +1, and each pixel takes the class of its largest channel. The argmax does not move when the generator's
output shrinks towards zero, so an immature or blurred generator still writes the classes it draws.
"""

from __future__ import annotations

import torch

__all__ = ["DESCRIPTIONS", "ENCODINGS", "LEVELS", "label_channels", "encode", "classes", "decode", "one_hot_scores"]

#: The level of each BraTS code, in the order of ``data.preprocess.LABEL_CODES`` (0, 1, 2, 4).
LEVELS = torch.tensor([-1.0, -1.0 / 3.0, 1.0 / 3.0, 1.0])
#: Each encoding and what a model card says of it.
DESCRIPTIONS = {
    "levels": "tumour label as one continuous channel: BraTS codes 0, 1, 2, 4 at levels -1, -1/3, 1/3, 1; the nearest level on output",
    "one-hot": "tumour label as four channels (background, NCR, ED, ET) at -1/+1; the class of the largest channel on output",
}
ENCODINGS = tuple(DESCRIPTIONS)


def label_channels(encoding: str = "levels") -> int:
    """Network channels the label takes."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown label encoding {encoding!r}; one of {', '.join(ENCODINGS)}")
    return 1 if encoding == "levels" else 4


def _index(codes: torch.Tensor) -> torch.Tensor:
    return torch.bucketize(codes.long(), torch.tensor([1, 2, 4], device=codes.device), right=True)  # 0->0, 1->1, 2->2, 4->3


def encode(codes: torch.Tensor, encoding: str = "levels") -> torch.Tensor:
    """(N, X, Y) BraTS codes -> (N, 1, X, Y) levels or (N, 4, X, Y) one-hot at -1/+1."""
    index = _index(codes)
    if label_channels(encoding) == 1:
        return LEVELS.to(codes.device)[index][:, None]
    return torch.nn.functional.one_hot(index, 4).permute(0, 3, 1, 2).float() * 2 - 1


def classes(channel: torch.Tensor) -> torch.Tensor:
    """Continuous label values (any shape) -> class indices 0..3 (background, NCR, ED, ET): the nearest level."""
    return (channel[..., None] - LEVELS.to(channel.device)).abs().argmin(dim=-1)


def decode(labels: torch.Tensor, encoding: str = "levels") -> torch.Tensor:
    """(N, 1 or 4, X, Y) network label channels -> (N, X, Y) class indices 0..3."""
    if label_channels(encoding) == 1:
        return classes(labels[:, 0])
    return labels.argmax(dim=1)


def one_hot_scores(output: torch.Tensor, image_channels: int, encoding: str = "levels") -> torch.Tensor:
    """(N, k + 1 or k + 4, X, Y) network output -> (N, k + 4, X, Y): images, then the decoded label as one-hot classes
    (the form the shared 2D output and mosaic code reads)."""
    index = decode(output[:, image_channels:], encoding)
    one_hot = torch.nn.functional.one_hot(index, 4).permute(0, 3, 1, 2).to(output.dtype)
    return torch.cat([output[:, :image_channels], one_hot], dim=1)
