"""The l2i3d per-case style model: residual fields recover a known gain, samples follow the fitted Gaussian."""

from __future__ import annotations

import numpy as np
from medsynth_engine.models.l2i3d.style import GRID, apply_field, fit_style, residual_field, sample_field, style_seed

SHAPE = (16, 16, 16)


def _classes() -> np.ndarray:
    classes = np.zeros(SHAPE, dtype=np.uint8)
    classes[2:14, 2:14, 2:14] = 2  # a cube of 'grey matter': every 2^3 cell inside it is all brain
    return classes


def test_the_residual_field_recovers_a_known_gain_per_cell():
    rng = np.random.default_rng(0)
    classes = _classes()
    mean = rng.uniform(-0.5, 0.5, (2, *SHAPE)).astype(np.float32)
    gain = np.zeros((2, GRID, GRID, GRID))
    gain[0] = 0.2
    gain[1, :4] = -0.1  # one half of the head darker in the second sequence
    fine = np.repeat(np.repeat(np.repeat(gain, 2, 1), 2, 2), 2, 3)
    image = ((mean + 1.0) * np.exp(fine) - 1.0).astype(np.float32)
    cells = residual_field(image, mean, classes).reshape(2, GRID, GRID, GRID)
    inside = np.zeros((GRID,) * 3, dtype=bool)
    inside[1:7, 1:7, 1:7] = True
    np.testing.assert_allclose(cells[:, inside], gain[:, inside], atol=0.02)
    assert not cells[:, ~inside].any()  # cells without brain carry no residual


def test_samples_follow_the_fitted_gaussian():
    rng = np.random.default_rng(1)
    d = 2 * GRID**3
    directions = np.linalg.qr(rng.normal(size=(d, 2)))[0].T  # two orthonormal directions
    centre = rng.normal(0, 0.01, d)
    fields = centre + (rng.normal(size=(200, 2)) * [0.3, 0.1]) @ directions
    style = fit_style(fields)
    assert style["style.basis"].shape == (16, d)
    np.testing.assert_allclose(style["style.scale"][:2].numpy(), [0.3, 0.1], rtol=0.15)
    assert style["style.scale"][2] < 1e-3  # nothing else varies
    draws = np.stack([sample_field(style, seed, 2, (GRID,) * 3).reshape(-1) for seed in range(400)])
    spread = (draws - centre) @ directions.T
    np.testing.assert_allclose(spread.std(axis=0), [0.3, 0.1], rtol=0.15)
    np.testing.assert_allclose(draws.mean(axis=0), centre, atol=0.06)


def test_a_sample_is_its_seeds_and_smooth_and_leaves_the_background():
    rng = np.random.default_rng(2)
    style = fit_style(rng.normal(0, 0.2, (10, 2 * GRID**3)))
    one, again, other = (sample_field(style, s, 2, SHAPE) for s in (5, 5, 6))
    np.testing.assert_array_equal(one, again)
    assert not np.allclose(one, other) and style_seed(5) != 5
    assert np.abs(np.diff(one, axis=1)).max() < np.abs(one).max()  # trilinear: no jumps between neighbours
    classes = _classes()
    images = rng.uniform(-1, 1, (2, *SHAPE)).astype(np.float32)
    styled = apply_field(images, one, classes)
    assert (styled[:, classes == 0] == -1.0).all() and styled.min() >= -1.0 and styled.max() <= 1.0
    np.testing.assert_allclose(styled[:, classes > 0], np.clip((images + 1) * np.exp(one) - 1, -1, 1)[:, classes > 0], rtol=1e-6)


def test_two_training_cases_give_one_component_and_one_gives_none():
    rng = np.random.default_rng(3)
    assert fit_style(rng.normal(size=(2, 2 * GRID**3)))["style.basis"].shape[0] == 1
    only = fit_style(rng.normal(size=(1, 2 * GRID**3)))
    assert only["style.basis"].shape[0] == 0
    np.testing.assert_allclose(sample_field(only, 0, 2, (GRID,) * 3).reshape(-1), only["style.mean"].numpy(), atol=1e-6)
