"""A PNG mosaic of samples: axial, coronal and sagittal mid-slices of each image channel, labels overlaid."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from MedSynthLib.conventions import BRATS_LABEL_COLOURS

from ..modelfile import write_atomic

__all__ = ["mosaic_image", "write_mosaic"]

_LABEL_CODES = (1, 2, 4)  # network label channels 1..3 after background
TILE = 96


def _views(volume: np.ndarray) -> list[np.ndarray]:
    """Mid-slices with anterior / superior up (RAS arrays, neurological left-right)."""
    x, y, z = (s // 2 for s in volume.shape)
    return [volume[:, :, z].T[::-1], volume[:, y, :].T[::-1], volume[x, :, :].T[::-1]]


def mosaic_image(samples: np.ndarray, image_channels: int, *, labels: bool) -> Image.Image:
    """Rows are samples; columns are (channel x view). ``samples`` is (N, C, R, R, R) network output."""
    rows = []
    for sample in samples:
        codes = None
        if labels:
            codes = np.asarray(_LABEL_CODES)[np.argmax(sample[image_channels + 1 :], axis=0)]
            codes = np.where(np.argmax(sample[image_channels:], axis=0) == 0, 0, codes)
        tiles = []
        for c in range(image_channels):
            grey_views = _views(np.clip((sample[c] + 1.0) * 127.5, 0, 255))
            label_views = _views(codes) if codes is not None else [None] * 3
            for grey, lab in zip(grey_views, label_views, strict=True):
                rgb = np.repeat(grey[..., None], 3, axis=2)
                if lab is not None:
                    for code, colour in BRATS_LABEL_COLOURS.items():
                        where = lab == code
                        rgb[where] = 0.45 * rgb[where] + 0.55 * 255 * np.asarray(colour)
                tile = Image.fromarray(rgb.astype(np.uint8)).resize((TILE, TILE), Image.NEAREST)
                tiles.append(np.asarray(tile))
        rows.append(np.concatenate(tiles, axis=1))
    return Image.fromarray(np.concatenate(rows, axis=0))


def write_mosaic(path: Path, samples: np.ndarray, image_channels: int, *, labels: bool) -> None:
    buffer = io.BytesIO()
    mosaic_image(samples, image_channels, labels=labels).save(buffer, format="PNG")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(Path(path), buffer.getvalue())
