"""pgan3d's own training options (the shared ones are ``training.finetune.FinetuneRequest``'s)."""

from __future__ import annotations

from dataclasses import dataclass

from ...contract import option

__all__ = ["PGANOptions"]


@dataclass(frozen=True)
class PGANOptions:
    freeze_stages: int = option(0, "keep the base generator's first N stages fixed (transfer on small data)", minimum=0, maximum=64)
    augment: bool = option(True, "DiffAugment of real and generated volumes for the critic")
    grad_checkpoint: bool = option(False, "recompute the generator's blocks in the backward pass: less memory, more time")
