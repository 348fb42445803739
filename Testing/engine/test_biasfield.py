"""N4 bias-field correction (``biasfield``): it flattens a smooth field, keeps a tumour-sized bright blob, keeps thick
slices whole, leaves zero and negative voxels alone and says why it cannot run."""

from __future__ import annotations

import numpy as np
import pytest
from medsynth_engine.biasfield import MIN_FIT_VOXELS, n4_array, shrink_factors


def _head(shape=(64, 64, 40), spacing=(2.0, 2.0, 3.0), blob: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two tissues (a 'white matter' core at 1000 inside 'grey matter' at 600) in air, a 3 cm bright blob when asked;
    returns image, affine and the core's mask."""
    affine = np.diag([*spacing, 1.0])
    mm = [(np.arange(n) - (n - 1) / 2) * s for n, s in zip(shape, spacing, strict=True)]
    x, y, z = np.meshgrid(*mm, indexing="ij")
    r = np.sqrt((x / 55) ** 2 + (y / 55) ** 2 + (z / 50) ** 2)
    image = np.where(r < 1.0, 600.0, 0.0)
    core = r < 0.6
    image[core] = 1000.0
    if blob:
        image[np.sqrt((x - 20) ** 2 + y**2 + z**2) < 15] = 1600.0
    rng = np.random.default_rng(0)
    image = image + rng.normal(0, 10, shape) * (image > 0)
    return image.astype(np.float32), affine, core


def _field(shape, spacing, strength: float) -> np.ndarray:
    """A smooth multiplicative field, exp of a linear plus quadratic ramp across the volume (log sd ~ strength / 2)."""
    u = [np.linspace(-1, 1, n) for n in shape]
    x, y, z = np.meshgrid(*u, indexing="ij")
    return np.exp(strength * (0.8 * x - 0.5 * z + 0.4 * y**2)).astype(np.float32)


def _cv(values: np.ndarray) -> float:
    return float(values.std() / values.mean())


def test_a_smooth_field_is_divided_out():
    image, affine, core = _head()
    biased = image * _field(image.shape, (2, 2, 3), 0.4)
    corrected = n4_array(biased, affine)
    assert corrected.shape == image.shape and corrected.dtype == np.float32
    assert _cv(biased[core]) > 0.08  # the field spreads one tissue over +-15 %
    assert _cv(corrected[core]) < _cv(biased[core]) / 3
    # contrast between the tissues survives: N4 divides by a smooth field, it does not equalise tissues
    shell = (image > 300) & (image < 800)
    assert 1.5 < np.median(corrected[core]) / np.median(corrected[shell]) < 1.8


def test_a_tumour_sized_bright_blob_is_not_taken_for_field():
    """A 3 cm lesion brighter than every tissue keeps its contrast: the field is smooth, the lesion is not."""
    image, affine, core = _head(blob=True)
    blob = image > 1300
    corrected = n4_array(image * _field(image.shape, (2, 2, 3), 0.3), affine)
    ratio = np.median(corrected[blob]) / np.median(corrected[core & ~blob])
    assert ratio == pytest.approx(1.6, rel=0.12)


def test_the_fit_mask_decides_where_the_field_is_fitted():
    image, affine, core = _head()
    biased = image * _field(image.shape, (2, 2, 3), 0.4)
    inside = n4_array(biased, affine, mask=core)
    assert _cv(inside[core]) < _cv(biased[core]) / 3
    assert not np.array_equal(inside, n4_array(biased, affine))


def test_zero_and_negative_voxels_come_back_unchanged():
    image, affine, _ = _head()
    image[:4] = -5.0
    biased = image * _field(image.shape, (2, 2, 3), 0.3)
    corrected = n4_array(biased, affine)
    assert np.array_equal(corrected[biased <= 0], biased[biased <= 0])


@pytest.mark.parametrize(
    ("size", "spacing", "factors"),
    [
        ((192, 224, 27), (1.0, 1.0, 7.0), [4, 4, 1]),  # thick slices stay whole
        ((96, 112, 64), (2.0, 2.0, 3.0), [2, 2, 1]),
        ((24, 24, 24), (6.0, 6.0, 6.0), [1, 1, 1]),
        ((20, 200, 200), (1.0, 1.0, 1.0), [2, 4, 4]),  # never under MIN_FIT_VOXELS voxels
    ],
)
def test_shrink_factors_bring_each_axis_near_4_mm(size, spacing, factors):
    assert shrink_factors(size, spacing) == factors
    assert all(n // f >= min(n, MIN_FIT_VOXELS) for n, f in zip(size, factors, strict=True))


def test_what_cannot_be_corrected_says_why():
    with pytest.raises(ValueError, match="too small"):
        n4_array(np.ones((30, 30, 2), np.float32), np.eye(4))
    with pytest.raises(ValueError, match="no voxel above zero"):
        n4_array(np.zeros((20, 20, 20), np.float32), np.eye(4))
