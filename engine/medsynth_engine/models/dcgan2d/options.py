"""dcgan2d's own training options (the shared ones, ``--resolution``, ``--width``..., are ``FinetuneRequest``'s)."""

from __future__ import annotations

from dataclasses import dataclass

from ...contract import option
from ..slices2d.options import SLICES_PER_CASE_OPTION

__all__ = ["DCGANOptions", "UPSAMPLE_MODES"]

#: ``transposed``: the poster's 4x4 stride-2 transposed convolutions; ``resize``: its proposed fix.
UPSAMPLE_MODES = ("resize", "transposed")


@dataclass(frozen=True)
class DCGANOptions:
    upsample: str = option(
        "resize", "generator upsampling: resize (nearest x2 then 3x3 conv, no grid artefact) or transposed (the poster's)",
        choices=UPSAMPLE_MODES,
    )
    slices_per_case: int = SLICES_PER_CASE_OPTION
    dropout: float = option(0.1, "dropout after every generator layer (the poster puts dropout on every layer)", minimum=0.0, maximum=0.9)
    critic_steps: int = option(2, "critic updates per generator update (WGAN-GP)", minimum=1, maximum=10)
