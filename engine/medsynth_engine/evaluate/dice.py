"""Dice of a predicted BraTS label map against the truth: per label (NCR, ED, ET) and per BraTS region.

The regions are what BraTS ranks segmenters by: whole tumour WT = 1+2+4, tumour core TC = 1+4, enhancing
tumour ET = 4 (the same voxels as the ET label). A label or region absent from both prediction and truth
counts as 1, the BraTS convention, so a healthy case predicted healthy is perfect.
"""

from __future__ import annotations

import numpy as np

from MedSynthLib.conventions import BRATS_LABELS

__all__ = ["REGIONS", "LABEL_KEYS", "dice_per_label", "dice_per_case"]

#: BraTS region -> the label codes it unites.
REGIONS: dict[str, tuple[int, ...]] = {"WT": (1, 2, 4), "TC": (1, 4), "ET": (4,)}
#: the keys of one case's Dice, in report order ("ET" is both a label and a region: one value).
LABEL_KEYS = (*BRATS_LABELS.values(), "WT", "TC")


def _dice(p: np.ndarray, t: np.ndarray) -> float:
    total = int(p.sum() + t.sum())
    return 1.0 if total == 0 else 2.0 * float((p & t).sum()) / total


def dice_per_label(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Dice of each BraTS label for one case."""
    return {name: _dice(prediction == code, truth == code) for code, name in BRATS_LABELS.items()}


def dice_per_case(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Dice of each label and of the WT and TC regions for one case."""
    scores = dice_per_label(prediction, truth)
    for name in ("WT", "TC"):
        codes = list(REGIONS[name])
        scores[name] = _dice(np.isin(prediction, codes), np.isin(truth, codes))
    return scores
