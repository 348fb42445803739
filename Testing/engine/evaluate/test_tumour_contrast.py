"""The drawn-tumour contrast measure (evaluate.tumour_contrast) on volumes whose answer is known by construction."""

from __future__ import annotations

import numpy as np
import pytest
from medsynth_engine.evaluate.tumour_contrast import contrast_table, tumour_contrast


def _head(shape=(40, 40, 40), air=0.0, seed=0):
    rng = np.random.default_rng(seed)
    grid = np.indices(shape)
    centre = (np.array(shape) - 1) / 2
    head = ((grid - centre[:, None, None, None]) ** 2).sum(0) <= 16**2
    image = np.where(head, 100.0 + 10.0 * np.sign(grid[2] - centre[2]), air)  # two tissues, symmetric left-right
    return image + (rng.random(shape) * 0.01 if air else 0.0), head


def test_contrast_is_the_lesion_step_over_the_head_spread():
    image, head = _head()
    codes = np.zeros(image.shape, dtype=np.uint8)
    codes[8:14, 16:24, 16:24] = 2  # left hemisphere only
    image[codes == 2] += 25.0
    expected = 25.0 / image[head].std()
    assert tumour_contrast(image, codes, 2) == pytest.approx(expected, rel=1e-9)
    assert tumour_contrast(image * 3.0 - 7.0, codes, 2) == pytest.approx(expected, rel=1e-9)  # int16 or [-1, 1]: same
    assert np.isnan(tumour_contrast(image, codes, 4))  # no enhancing voxels


def test_air_near_its_minimum_is_not_counted_as_head():
    """A generated volume's air sits near, not at, the minimum; a percentile cut (60th) would call it head."""
    exact, head = _head(air=0.0)
    noisy, _ = _head(air=2.0)
    codes = np.zeros(exact.shape, dtype=np.uint8)
    codes[8:14, 16:24, 16:24] = 2
    exact[codes == 2] += 25.0
    noisy[codes == 2] += 25.0
    assert tumour_contrast(noisy, codes, 2) == pytest.approx(tumour_contrast(exact, codes, 2), rel=1e-3)
    naive = 25.0 / noisy[noisy > np.percentile(noisy, 60)].std()
    assert naive < 0.7 * tumour_contrast(noisy, codes, 2)


def test_reference_leaves_out_a_lesion_crossing_the_midline():
    image, _ = _head()
    codes = np.zeros(image.shape, dtype=np.uint8)
    codes[14:26, 16:24, 16:24] = 2  # straddles the midline: its mirror is mostly itself
    codes[10:14, 16:24, 16:24] = 2
    image[codes == 2] += 25.0
    assert tumour_contrast(image, codes, 2) > 0.5 * 25.0 / image.std()
    row = contrast_table({"flair": image, "t1ce": image}, codes)
    assert row[0] == tumour_contrast(image, codes, 2) and np.isnan(row[2])  # no t2 in the case
    with pytest.raises(ValueError, match="same 3D grid"):
        tumour_contrast(image, codes[:-1], 2)
