"""Network output of a 2D family -> single-slice arrays on the training data's scale, and the slice's RAS affine."""

from __future__ import annotations

import numpy as np

from MedSynthLib.conventions import LABEL_CHANNEL

from ...data.preprocess import grid_affine
from ...modelfile import ModelCard

__all__ = ["LABEL_CODES", "to_physical", "slice_affine"]

LABEL_CODES = np.array([0, 1, 2, 4], dtype=np.uint8)


def to_physical(output: np.ndarray, card: ModelCard) -> dict[str, np.ndarray]:
    """Network output (C, X, Y) -> arrays by channel: images on the card's scale (int16), labels as BraTS codes.

    The label part of ``output`` is one score per class (background, NCR, ED, ET); the highest wins.
    """
    images = list(card.architecture["image_channels"])
    scales = card.preprocessing.get("normalisation", {}).get("channels", {})
    arrays: dict[str, np.ndarray] = {}
    for i, channel in enumerate(images):
        scale = scales.get(channel, {"low": -1.0, "high": 1.0})
        value = (np.clip(output[i], -1.0, 1.0) + 1.0) / 2.0 * (scale["high"] - scale["low"]) + scale["low"]
        arrays[channel] = np.clip(np.rint(value), -32768, 32767).astype(np.int16)
    if card.architecture.get("labels"):
        arrays[LABEL_CHANNEL] = LABEL_CODES[np.argmax(output[len(images) :], axis=0)]
    return arrays


def slice_affine(shape: tuple[int, ...], spacing: tuple[float, ...], thickness: float) -> np.ndarray:
    """RAS affine of one axial slice centred on the origin: in-plane spacing, the slice's thickness along S."""
    return grid_affine((*shape, 1), (*spacing, thickness))
