"""A PNG mosaic of 2D samples: one row per sample, one tile per image channel, tumour labels overlaid."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from MedSynthLib.conventions import BRATS_LABEL_COLOURS

from ...modelfile import write_atomic

__all__ = ["mosaic_image", "write_mosaic"]

_LABEL_CODES = np.array([0, 1, 2, 4])
TILE = 128


def mosaic_image(samples: np.ndarray, image_channels: int, *, labels: bool) -> Image.Image:
    """``samples`` is (N, C, X, Y) network output (RAS: shown with anterior up, the patient's left on the right)."""
    rows = []
    for sample in samples:
        codes = _LABEL_CODES[np.argmax(sample[image_channels:], axis=0)] if labels else None
        tiles = []
        for c in range(image_channels):
            grey = np.clip((sample[c] + 1.0) * 127.5, 0, 255)
            rgb = np.repeat(grey[..., None], 3, axis=2)
            if codes is not None:
                for code, colour in BRATS_LABEL_COLOURS.items():
                    where = codes == code
                    rgb[where] = 0.45 * rgb[where] + 0.55 * 255 * np.asarray(colour)
            tile = Image.fromarray(rgb.transpose(1, 0, 2)[::-1].astype(np.uint8)).resize((TILE, TILE), Image.NEAREST)
            tiles.append(np.asarray(tile))
        rows.append(np.concatenate(tiles, axis=1))
    return Image.fromarray(np.concatenate(rows, axis=0))


def write_mosaic(path: Path, samples: np.ndarray, image_channels: int, *, labels: bool) -> None:
    buffer = io.BytesIO()
    mosaic_image(samples, image_channels, labels=labels).save(buffer, format="PNG")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(Path(path), buffer.getvalue())
