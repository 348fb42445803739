"""stylegan2d's own training options (the shared ones, ``--resolution``, ``--width``..., are ``FinetuneRequest``'s)."""

from __future__ import annotations

from dataclasses import dataclass

from ...contract import option
from ..slices2d.options import SLICES_PER_CASE_OPTION

__all__ = ["StyleGANOptions"]


@dataclass(frozen=True)
class StyleGANOptions:
    slices_per_case: int = SLICES_PER_CASE_OPTION
    mapping_layers: int = option(8, "fully connected layers of the mapping network z -> w (the paper's 8)", minimum=1, maximum=16)
    learning_rate: float = option(
        0.0025, "Adam learning rate of G and D (the paper's 0.0025 at batch 32; a small batch trains more stably lower)", minimum=1e-6, maximum=0.1
    )
    label_encoding: str = option(
        "one-hot", "how the generator draws the tumour label: one-hot (four channels, argmax on output; robust to an immature "
        "generator's shrunken output) or levels (one channel, nearest of four levels, as the seed study)", choices=("one-hot", "levels")
    )
    r1_gamma: float = option(1.0, "R1 penalty weight on real images (applied every 16 minibatches)", minimum=0.0, maximum=1000.0)
    pl_weight: float = option(2.0, "path-length regularisation weight (applied every 4 minibatches; 0 turns it off)", minimum=0.0, maximum=100.0)
    style_mixing: float = option(0.9, "probability of mixing two latents' styles at a random layer", minimum=0.0, maximum=1.0)
    ada_target: float = option(0.6, "ADA's target for r_t = E[sign(D(real))]; higher p when D overfits past it", minimum=0.0, maximum=1.0)
    ada_kimg: float = option(
        500.0, "ADA adjustment speed: thousands of images for p to go from 0 to 1 (the paper's 500)", minimum=0.001, maximum=100000.0
    )
