"""``medsynth finetune --model seg`` (new model), ``--model seg-phantom`` or a segnet folder (continue).

Loss: cross-entropy over background, necrosis, oedema and enhancing tumour on every sample, plus MONAI's Dice
loss (it copes with the small tumour classes) on the samples that show a sequence beyond T1. On T1 alone a
tumour barely shows (the phantom's oedema is 0.78 of white matter's signal, grey matter 0.81): Dice there pays
the network to cover where a tumour might be, and it learned to label tens of ml in healthy heads given T1 alone;
cross-entropy alone keeps it calibrated (a voxel is labelled where tumour is more likely than not). Measured in
bench/results/add_channel.md (one 1,200-step continuation: T1-alone false positives down 3-5 fold, real MNI head
36 -> 7 ml, at equal all-four Dice; trained afresh this way, the shipped seg-phantom labels 0.0 ml in every healthy
head given T1 alone). The log keeps the name ``dice_ce`` for the total.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from monai.losses import DiceLoss

from ..channelnet.fitting import Family, train_family
from ..channelnet.inputs import SEQUENCES

__all__ = ["train", "TRAINING"]

_DICE = DiceLoss(to_onehot_y=True, softmax=True, squared_pred=False, smooth_nr=1e-5, smooth_dr=1e-5, reduction="none")
#: BraTS code -> class index (0 background, 1 NCR, 2 ED, 3 ET).
_CLASS_OF_CODE = torch.tensor([0, 1, 2, 0, 3], dtype=torch.long)


def _loss(pred: torch.Tensor, codes: torch.Tensor, x: torch.Tensor, trainer) -> dict[str, torch.Tensor]:
    classes = _CLASS_OF_CODE[codes.long().cpu()].to(pred.device)
    pred = pred.float()
    total = F.cross_entropy(pred, classes)
    beyond_t1 = beyond_t1_samples(x)
    if beyond_t1.any():
        per_sample = _DICE(pred[beyond_t1], classes[beyond_t1, None]).flatten(1).mean(1)
        total = total + per_sample.mean()
    return {"total": total, "dice_ce": total.detach()}


def beyond_t1_samples(x: torch.Tensor) -> torch.Tensor:
    """(B,) bool: the samples of a network input (B, 8, ...) whose presence maps show t1ce, t2 or flair."""
    n = len(SEQUENCES)
    return x[:, n + 1 : 2 * n].flatten(2).amax(2).amax(1) > 0.5


TRAINING = Family(
    scratch_id="seg",
    architecture="segnet",
    kind="segmentation",
    target="seg",
    out_channels=4,
    loss=_loss,
    keep_probability=0.6,
    t1_only=0.1,
    describe="MONAI UNet, cross-entropy (softmax over background, NCR, ED, ET) plus Dice on samples with a sequence beyond T1, AdamW, patches half holding tumour (anywhere in the patch)",
)


def train(request, options=None, progress=None, should_stop=None) -> Path:
    """Train or continue a segnet model; the contract of training.finetune.run_finetune (seg has no options of its own)."""
    return train_family(TRAINING, request, None, progress, should_stop)
