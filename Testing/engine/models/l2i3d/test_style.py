"""The l2i3d per-case style model: style vectors recover a known contrast, gain and noise level; samples follow the
fitted Gaussian; a drawn style is its seed's, smooth, and leaves the background alone."""

from __future__ import annotations

import numpy as np
from medsynth_engine.models.l2i3d.labels import N_CLASSES
from medsynth_engine.models.l2i3d.style import (
    GRID,
    apply_style,
    draw_vector,
    fit_style,
    residual_vector,
    sample_style,
    style_seed,
)

SHAPE = (16, 16, 16)
C = 2
OFFSETS, CELLS = C * N_CLASSES, C * GRID**3


def _classes() -> np.ndarray:
    classes = np.zeros(SHAPE, dtype=np.uint8)
    classes[2:14, 2:14, 2:14] = 2  # grey matter around a white-matter core: every 2^3 cell inside is all brain
    classes[6:10, 6:10, 6:10] = 3
    return classes


def _split(vector: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return vector[:OFFSETS].reshape(C, N_CLASSES), vector[OFFSETS : OFFSETS + CELLS].reshape(C, GRID, GRID, GRID), vector[OFFSETS + CELLS :]


def test_the_style_vector_recovers_tissue_contrast_bias_and_noise_level():
    rng = np.random.default_rng(0)
    classes = _classes()
    mean = rng.uniform(-0.5, 0.5, (C, *SHAPE)).astype(np.float32)
    gain = np.zeros((C, *SHAPE))
    gain[0][classes == 2], gain[0][classes == 3], gain[1][classes > 0] = 0.2, -0.1, 0.05  # contrast per tissue
    image = ((mean + 1.0) * np.exp(gain) - 1.0).astype(np.float32)
    offsets, cells, _ = _split(residual_vector(image, mean, classes))
    np.testing.assert_allclose(offsets[0, [2, 3]], [0.2, -0.1], atol=0.01)
    np.testing.assert_allclose(offsets[1, [2, 3]], [0.05, 0.05], atol=0.01)
    assert np.abs(cells).max() < 0.01 and not offsets[:, [1, 4, 5, 6]].any()  # absent classes carry nothing

    bias = np.zeros((C, *SHAPE))
    bias[:, :8] = 0.1  # the left half brighter: a bias field, the same in every tissue
    bias[:, 8:] = -0.1
    image = ((mean + 1.0) * np.exp(bias) - 1.0).astype(np.float32)
    offsets, cells, _ = _split(residual_vector(image, mean, classes))
    inside = np.zeros((GRID,) * 3, dtype=bool)
    inside[1:7, 1:7, 1:7] = True
    left = inside & (np.arange(GRID) < 4)[:, None, None]
    np.testing.assert_allclose(cells[:, left] + offsets[:, 2:3], 0.1, atol=0.03)
    np.testing.assert_allclose(cells[:, inside & ~left] + offsets[:, 2:3], -0.1, atol=0.03)
    assert not cells[:, ~inside].any()  # cells without brain carry no residual

    flat = np.zeros((C, *SHAPE), dtype=np.float32)  # no edges: the detail is the noise alone
    noise = rng.normal(0, 0.02, flat.shape).astype(np.float32)
    quiet, loud = flat + noise, flat + 2 * noise
    detail = _split(residual_vector(loud, flat, classes))[2] - _split(residual_vector(quiet, flat, classes))[2]
    np.testing.assert_allclose(detail, np.log(2.0), atol=1e-3)  # twice the noise: log 2 more detail


def test_samples_follow_the_fitted_gaussian():
    rng = np.random.default_rng(1)
    d = OFFSETS + CELLS + C
    directions = np.linalg.qr(rng.normal(size=(d, 2)))[0].T  # two orthonormal directions
    centre = rng.normal(0, 0.01, d)
    vectors = centre + (rng.normal(size=(300, 2)) * [0.3, 0.1]) @ directions
    style = fit_style(vectors)
    assert style["style.basis"].shape == (299, d) and style["style.scale"][2] < 1e-3  # every component kept; nothing else varies
    draws = np.stack([draw_vector(style, seed).numpy() for seed in range(500)])
    np.testing.assert_allclose(((draws - centre) @ directions.T).std(axis=0), [0.3, 0.1], rtol=0.15)
    np.testing.assert_allclose(draws.mean(axis=0), centre, atol=0.05)
    residual = (draws - centre) - ((draws - centre) @ directions.T) @ directions
    assert np.abs(residual).max() < 1e-3  # only the fitted directions vary


def test_drawn_styles_vary_as_much_as_the_training_cases_in_every_dimension_and_stay_in_their_span():
    """Many independent bias-field cells must not crowd out the few contrast numbers (a 16-component cap kept about
    half of their variance)."""
    rng = np.random.default_rng(4)
    d = OFFSETS + CELLS + C
    vectors = rng.normal(0.0, 0.3, (40, d))
    vectors[:, :OFFSETS] = rng.normal(0.0, 0.1, (40, OFFSETS))  # per-tissue contrast, independent of the cells
    style = fit_style(vectors)
    draws = np.stack([draw_vector(style, seed).numpy() for seed in range(400)])
    ratio = draws.std(axis=0) / vectors.std(axis=0, ddof=1)
    assert 0.8 < np.median(ratio[:OFFSETS]) < 1.2 and 0.8 < np.median(ratio[OFFSETS:]) < 1.2
    centred = vectors - vectors.mean(axis=0)
    coefficients = np.linalg.lstsq(centred.T, (draws - vectors.mean(axis=0)).T, rcond=None)[0]
    np.testing.assert_allclose(centred.T @ coefficients, (draws - vectors.mean(axis=0)).T, atol=1e-4)  # in the training span


def test_a_drawn_style_is_its_seeds_and_smooth_and_leaves_the_background():
    rng = np.random.default_rng(2)
    style = fit_style(rng.normal(0, 0.2, (10, OFFSETS + CELLS + C)))
    classes = _classes()
    one, again, other = (sample_style(style, s, C, classes) for s in (5, 5, 6))
    np.testing.assert_array_equal(one.field, again.field)
    np.testing.assert_array_equal(one.noise, again.noise)
    assert not np.allclose(one.field, other.field) and style_seed(5) != 5
    assert one.noise.shape == (C,) and (one.noise > 0).all()
    white = classes == 3  # inside one tissue the field is the smooth bias only: no jumps between neighbours
    steps = np.abs(np.diff(one.field, axis=1))[:, white[1:] & white[:-1]]
    assert steps.max() < np.abs(one.field[:, white]).max()
    images = rng.uniform(-1, 1, (C, *SHAPE)).astype(np.float32)
    styled = apply_style(images, one, classes)
    assert (styled[:, classes == 0] == -1.0).all() and styled.min() >= -1.0 and styled.max() <= 1.0
    expected = np.clip((images + 1) * np.exp(one.field) - 1, -1, 1)
    np.testing.assert_allclose(styled[:, classes > 0], expected[:, classes > 0], rtol=1e-5)


def test_two_training_cases_give_one_component_and_one_gives_none():
    rng = np.random.default_rng(3)
    d = OFFSETS + CELLS + C
    assert fit_style(rng.normal(size=(2, d)))["style.basis"].shape[0] == 1
    only = fit_style(rng.normal(size=(1, d)))
    assert only["style.basis"].shape[0] == 0
    np.testing.assert_allclose(draw_vector(only, 0).numpy(), only["style.mean"].numpy(), atol=1e-6)
