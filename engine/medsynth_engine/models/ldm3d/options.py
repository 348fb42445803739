"""ldm3d's own training options (the shared ones are ``training.finetune.FinetuneRequest``'s)."""

from __future__ import annotations

from dataclasses import dataclass

from ...contract import option

__all__ = ["LDMOptions", "STAGES"]

#: The two training stages, in order.
STAGES = ("autoencoder", "diffusion")


@dataclass(frozen=True)
class LDMOptions:
    stage: str | None = option(None, "the stage to train (default: the next one due)", choices=STAGES)
    latent_downsample: int | None = option(
        None, "new model: latent grid side = volume side / this (default 4; 2 below 32^3); 2 keeps small structures", choices=(2, 4, 8)
    )
