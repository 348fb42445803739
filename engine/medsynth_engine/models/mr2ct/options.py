"""mr2ct's own training options (the shared ones are ``training.finetune.FinetuneRequest``'s)."""

from __future__ import annotations

from dataclasses import dataclass

from ...contract import option

__all__ = ["MR2CTOptions"]


@dataclass(frozen=True)
class MR2CTOptions:
    stage: str | None = option(None, "adversarial adds a PatchGAN critic for sharper bone (default: the plain L1 fit)", choices=("adversarial",))
    brain_extracted_share: float = option(
        0.5, "training on a tissue pool: the share of samples painted brain-extracted (the rest whole-head MR)", minimum=0.0, maximum=1.0
    )
