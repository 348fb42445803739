"""``medsynth finetune --model seg`` (new model), ``--model seg-phantom`` or a segnet folder (continue).

Loss: MONAI's DiceCELoss over background, necrosis, oedema and enhancing tumour (Dice copes with the small
tumour classes, cross-entropy keeps the early steps stable).
"""

from __future__ import annotations

from pathlib import Path

import torch
from monai.losses import DiceCELoss

from ..channelnet.fitting import Family, train_family

__all__ = ["train", "TRAINING"]

_DICE_CE = DiceCELoss(to_onehot_y=True, softmax=True, squared_pred=False, smooth_nr=1e-5, smooth_dr=1e-5)
#: BraTS code -> class index (0 background, 1 NCR, 2 ED, 3 ET).
_CLASS_OF_CODE = torch.tensor([0, 1, 2, 0, 3], dtype=torch.long)


def _loss(pred: torch.Tensor, codes: torch.Tensor, x: torch.Tensor, trainer) -> dict[str, torch.Tensor]:
    classes = _CLASS_OF_CODE[codes.long().cpu()].to(pred.device)[:, None]
    total = _DICE_CE(pred.float(), classes)
    return {"total": total, "dice_ce": total.detach()}


TRAINING = Family(
    scratch_id="seg",
    architecture="segnet",
    kind="segmentation",
    target="seg",
    out_channels=4,
    loss=_loss,
    keep_probability=0.6,
    t1_only=0.1,
    describe="MONAI UNet, DiceCELoss (softmax over background, NCR, ED, ET), AdamW, patches half centred on tumour",
)


def train(request, options=None, progress=None, should_stop=None) -> Path:
    """Train or continue a segnet model; the contract of training.finetune.run_finetune (seg has no options of its own)."""
    return train_family(TRAINING, request, None, progress, should_stop)
