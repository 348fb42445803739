"""``medsynth finetune --model mr2ct`` (new model), ``--model mr2ct-phantom`` or an mr2ct folder (continue).

A 3D UNet regression of HU / 1000 (the network is segnet's: MONAI UNet on the normalised MR input, with batch
norm: instance norm made the absolute HU depend on each sliding window's content) with an
L1 loss, weighted x4 in bone (above 300 HU) so the thin skull is not averaged away. ``--stage adversarial``
adds MONAI's PatchDiscriminator conditioned on the MR (least-squares GAN, weight 0.01) for sharper bone;
the default (no ``--stage``) is the plain L1 regression. A quarter of the training patches see T1 alone,
the most common clinical MR.

On a tissue pool (domain randomisation, ``channelnet.randomise``) patches are placed anywhere in the head, none
centred on a tumour, and ``--brain-extracted-share`` sets how many samples are brain-extracted (default 0.5, as
seg's): on those the skull can only be guessed from the brain's outline, and empty input around a brain means
skull and scalp where around a whole head it means air, so the share moves the model between the two inputs.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch

from ..channelnet.fitting import Family, train_family
from ..channelnet.inputs import HU_RANGE
from ..channelnet.model import CT_SCALE
from ..channelnet.randomise import RANGES
from .options import MR2CTOptions

__all__ = ["train", "TRAINING", "ADVERSARIAL_WEIGHT"]

ADVERSARIAL_WEIGHT = 0.01
BONE_HU, BONE_WEIGHT = 300.0, 4.0


def _loss(pred: torch.Tensor, hu: torch.Tensor, x: torch.Tensor, trainer) -> dict[str, torch.Tensor]:
    target = (hu.clamp(*HU_RANGE) / CT_SCALE)[:, None].to(pred.dtype)
    weight = 1.0 + (BONE_WEIGHT - 1.0) * (hu[:, None] > BONE_HU).to(pred.dtype)
    l1 = (weight * (pred - target).abs()).mean()
    losses = {"l1": l1.detach()}
    total = l1
    if any(True for _ in trainer.D.parameters()):
        fake = torch.cat([x, pred], dim=1)
        real = torch.cat([x, target], dim=1)
        d_real = trainer.D(real)[-1]
        d_fake = trainer.D(fake.detach())[-1]
        d_loss = 0.5 * ((d_real - 1.0).square().mean() + d_fake.square().mean())
        trainer.opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        trainer.opt_d.step()
        g_adv = (trainer.D(fake)[-1] - 1.0).square().mean()
        total = l1 + ADVERSARIAL_WEIGHT * g_adv
        losses.update(d=d_loss.detach(), g_adv=g_adv.detach())
    return {"total": total, **losses}


def _extras(config, stage) -> dict:
    return {
        "loss": f"L1 on HU/{CT_SCALE:g} (x{BONE_WEIGHT:g} above {BONE_HU:g} HU)"
        + (f" + {ADVERSARIAL_WEIGHT} x LSGAN with MONAI PatchDiscriminator" if stage == "adversarial" else ""),
        "output": f"HU clipped to {HU_RANGE[0]:g}..{HU_RANGE[1]:g}",
    }


TRAINING = Family(
    scratch_id="mr2ct",
    architecture="mr2ct",
    kind="translation",
    target="ct",
    out_channels=1,
    loss=_loss,
    keep_probability=0.6,
    t1_only=0.25,
    stages=(None, "adversarial"),
    norm="batch",
    describe="MONAI UNet regression of HU/1000, AdamW",
    extras=_extras,
    ranges=replace(RANGES, tumour_patch_share=0.0),
)


def train(request, options: MR2CTOptions, progress=None, should_stop=None) -> Path:
    """Train or continue an mr2ct model; the contract of training.finetune.run_finetune."""
    family = replace(TRAINING, ranges=replace(TRAINING.ranges, skull_off_probability=options.brain_extracted_share))
    return train_family(family, request, options.stage, progress, should_stop)
