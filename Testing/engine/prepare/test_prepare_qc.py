"""The QC mosaic a rater looks at before a case is used: every sequence, three planes, the mask's outline closed and
drawn on the unmasked head (a mask that kept skull or cut brain must show)."""

from __future__ import annotations

import io

import numpy as np
from medsynth_engine.prepare.qc import TILE, mosaic_png
from PIL import Image
from scipy import ndimage


def _head(shape=(170, 200, 170)) -> tuple[np.ndarray, np.ndarray]:
    """A skull shell (half the brain's intensity) around a brain ellipsoid, at 1 mm-like sizes (larger than a tile,
    so the mosaic scales down), and the brain's mask."""
    axes = np.ogrid[tuple(slice(0, n) for n in shape)]
    r = np.sqrt(sum(((a - (n - 1) / 2) / (n / 2.2)) ** 2 for a, n in zip(axes, shape, strict=True))).astype(np.float32)
    brain = r < 0.8
    return np.where(brain, 500.0, np.where(r < 0.95, 250.0, 0.0)).astype(np.float32), brain


def _mosaic(images: dict[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(mosaic_png(images, mask))).convert("RGB")).astype(int)


def test_every_sequence_in_three_planes_with_a_closed_outline_on_the_unmasked_head():
    image, brain = _head()
    mosaic = _mosaic({"t1": image, "flair": 2.0 * image}, brain)
    assert mosaic.shape[1] == 3 * TILE and mosaic.shape[0] % 2 == 0
    red = (mosaic[..., 0] == 255) & (mosaic[..., 1] == 40) & (mosaic[..., 2] == 40)
    height = mosaic.shape[0] // 2
    for row in range(2):
        for column in range(3):
            tile = np.s_[row * height:(row + 1) * height, column * TILE:(column + 1) * TILE]
            outline = red[tile]
            interior = ndimage.binary_fill_holes(outline) & ~outline
            assert interior.sum() > 20 * outline.sum() > 0, (row, column)  # closed, not a few surviving pixels
            # The skull outside the outline is shown at its own grey (half the brain's), not blacked out.
            skull = ~interior & ~outline & (np.abs(mosaic[tile][..., 0] - 127) < 20)
            assert skull.sum() > 200, (row, column)


def test_a_mask_that_cuts_brain_is_visible():
    """Half the brain left out of the mask: the left-out half still shows, outside the outline."""
    image, brain = _head()
    cut = brain.copy()
    cut[: brain.shape[0] // 2] = False
    axial = _mosaic({"t1": image}, cut)[:, :TILE, 0]
    # The brain is white (its 500 is the mask's 99.5th percentile) on both sides of the cut.
    left, right = axial[:, : TILE // 2], axial[:, TILE // 2:]
    assert (left > 200).sum() > 0.5 * (right > 200).sum() > 0
