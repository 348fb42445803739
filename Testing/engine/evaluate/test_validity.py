"""Validity measures with known answers: PRDC on identical, collapsed, shifted and over-dispersed feature sets;
the two-level bootstrap; region Dice; and a TSTR run that tells a useful synthetic set from a useless one
while its built-in control (an independent real set) scores about 1."""

from __future__ import annotations

import numpy as np
import pytest
from medsynth_engine.errors import MedSynthError
from medsynth_engine.evaluate.confidence import bootstrap_means, interval
from medsynth_engine.evaluate.dice import dice_per_case
from medsynth_engine.evaluate.prdc import prdc
from medsynth_engine.evaluate.tstr import TstrSettings, run_tstr, run_tstr_sets

RNG = np.random.default_rng(0)
REAL = RNG.normal(size=(200, 8))


def test_prdc_of_identical_sets():
    scores = prdc(REAL, REAL.copy(), k=5)
    assert (scores["precision"], scores["recall"], scores["coverage"]) == (1.0, 1.0, 1.0)
    assert scores["density"] == pytest.approx(6 / 5)  # each ball holds its own centre and its 5 neighbours


def test_prdc_separates_fidelity_from_diversity():
    same = prdc(REAL, RNG.normal(size=(200, 8)))
    collapsed = prdc(REAL, REAL[:1] + 0.01 * RNG.normal(size=(200, 8)))
    wide = prdc(REAL, 1.5 * RNG.normal(size=(200, 8)))
    far = prdc(REAL, RNG.normal(size=(200, 8)) + 10.0)
    assert min(same["precision"], same["recall"], same["coverage"]) > 0.6 and 0.6 < same["density"] < 1.5
    # Collapse: every sample is realistic (precision 1) but they cover only their one real case.
    assert collapsed["precision"] == 1.0 and collapsed["recall"] <= 0.05 and collapsed["coverage"] <= 0.1  # the balls holding that case
    # More varied than real: recall and coverage stay high while precision and density fall.
    assert wide["recall"] > 0.9 and wide["precision"] < wide["recall"] - 0.3 and wide["density"] < 0.5 < wide["coverage"]
    assert far == {"precision": 0.0, "recall": 0.0, "density": 0.0, "coverage": 0.0, "k": 5.0}


def test_two_level_bootstrap_intervals():
    flat = {"a": np.full((3, 5, 1), 0.7), "b": np.full((3, 5, 1), 0.35)}
    samples = bootstrap_means(flat)
    assert interval(samples["a"][:, 0]) == [0.7, 0.7]
    assert interval(samples["b"][:, 0] / samples["a"][:, 0]) == [0.5, 0.5]
    spread = {"a": RNG.uniform(size=(4, 8, 1))}
    low, high = interval(bootstrap_means(spread)["a"][:, 0])
    assert low < spread["a"].mean() < high and high - low < 0.5
    assert interval(np.array([np.nan, np.inf])) is None


def test_the_bootstrap_draws_subjects_when_they_have_several_cases():
    """2D: a subject's slices are near-copies, so the interval must reflect the number of subjects, not of slices."""
    rng = np.random.default_rng(5)
    per_subject = np.tile(rng.uniform(0.3, 0.9, size=6), (3, 1))  # 3 seeds (alike here), 6 held-out subjects each
    slices = np.repeat(per_subject, 10, axis=1)[..., None] + 0.001 * rng.normal(size=(3, 60, 1))  # 10 slices a subject
    subjects = np.tile(np.repeat(np.arange(6), 10), (3, 1))
    by_case = interval(bootstrap_means({"a": slices})["a"][:, 0])
    by_subject = interval(bootstrap_means({"a": slices}, subjects=subjects)["a"][:, 0])
    assert by_subject[0] < slices.mean() < by_subject[1]
    assert by_subject[1] - by_subject[0] > 2 * (by_case[1] - by_case[0])  # about sqrt(10) wider
    half = bootstrap_means({"a": slices, "b": slices / 2}, subjects=subjects)  # paired: the same draw for both
    assert interval(half["b"][:, 0] / half["a"][:, 0]) == [0.5, 0.5]
    one_each = np.tile(np.arange(60), (3, 1))  # one case a subject: the case bootstrap, resample for resample
    assert np.array_equal(bootstrap_means({"a": slices}, subjects=one_each)["a"], bootstrap_means({"a": slices})["a"])


def test_region_dice_unites_labels():
    truth = np.zeros((4, 4, 4), dtype=np.uint8)
    truth[0], truth[1], truth[2] = 1, 2, 4
    predicted = truth.copy()
    predicted[0] = 4  # necrosis called enhancing: still tumour core and whole tumour
    scores = dice_per_case(predicted, truth)
    assert scores["WT"] == 1.0 and scores["TC"] == 1.0 and scores["NCR"] == 0.0 and scores["ED"] == 1.0
    assert scores["ET"] == pytest.approx(2 * 16 / (16 + 32))


def _cases(n: int, seed: int, tumour: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Noisy 16^3 volumes (2 channels) with a bright sphere of oedema around an enhancing core in channel 0."""
    rng = np.random.default_rng(seed)
    grid = np.indices((16, 16, 16)).transpose(1, 2, 3, 0)
    images = rng.normal(scale=0.3, size=(n, 2, 16, 16, 16)).astype(np.float32)
    labels = np.zeros((n, 16, 16, 16), dtype=np.uint8)
    for i in range(n):
        distance = np.linalg.norm(grid - rng.uniform(5, 11, size=3), axis=-1)
        radius = rng.uniform(3.0, 4.5)
        labels[i][distance < radius] = 2
        labels[i][distance < radius / 2] = 4
        if tumour:
            images[i, 0][labels[i] > 0] += 1.5
            images[i, 1][labels[i] == 4] += 1.5
        else:
            labels[i] = 0
    return images, labels


@pytest.mark.slow
def test_tstr_discriminates_and_its_control_scores_about_one():
    real = _cases(16, seed=1)
    settings = TstrSettings(steps=30, batch_size=4, patch=16, learning_rate=1e-2, seeds=1, test_fraction=0.5)
    results = run_tstr_sets(real, {"useful": _cases(8, seed=2), "useless": _cases(8, seed=2, tumour=False)}, settings)
    useful, useless = results["useful"], results["useless"]
    assert useful["dice_real"]["WT"] > 0.7  # 0.79 after 30 steps: the segmenter learns the lesion
    assert useful["control_ratio_ci"][0] <= 1.0 <= useful["control_ratio_ci"][1]
    assert useful["dice_ratio_ci"][0] > 0.8
    assert useless["dice_synthetic"]["WT"] < 0.3 and useless["dice_ratio_ci"][1] < useful["dice_ratio_ci"][0]
    assert useful["dice_real"] == useless["dice_real"]  # one real and one control model per seed, shared
    assert useful["tstr"]["n_train"] == 4 and useful["tstr"]["n_test"] == 8 and useful["tstr"]["seeds"] == [0]


@pytest.mark.slow
def test_swinunetr_is_a_selectable_segmenter():
    images, labels = _cases(4, seed=3)
    big = (np.repeat(np.repeat(np.repeat(images, 4, 2), 4, 3), 4, 4), np.repeat(np.repeat(np.repeat(labels, 4, 1), 4, 2), 4, 3))
    result = run_tstr(big, big, TstrSettings(steps=1, batch_size=1, patch=64, segmenter="swinunetr", seeds=1))
    assert result["tstr"]["segmenter"] == "swinunetr" and "SwinUNETR" in result["tstr"]["network"]
    assert result["dice_synthetic"] == result["dice_real"]


def test_bad_tstr_settings_are_one_sentence():
    real = _cases(2, seed=4)
    with pytest.raises(MedSynthError, match="at least 3 real cases"):
        run_tstr(real, real, TstrSettings(steps=1, patch=16, seeds=1))
    with pytest.raises(MedSynthError, match="multiple of 32"):
        run_tstr(_cases(4, seed=4), real, TstrSettings(steps=1, patch=16, segmenter="swinunetr"))
    with pytest.raises(MedSynthError, match="Unknown segmenter"):
        TstrSettings(segmenter="vit").validate(64)


def test_regions_round_trip_the_nested_brats_labels():
    import torch
    from medsynth_engine.evaluate.segmenters import classes_of, regions_of

    classes = torch.randint(0, 4, (2, 5, 5, 5), generator=torch.Generator().manual_seed(0))
    regions = regions_of(classes)
    assert regions.shape == (2, 3, 5, 5, 5)
    assert torch.equal(regions[:, 0].bool(), classes > 0) and torch.equal(regions[:, 2].bool(), classes == 3)
    for case in range(2):
        assert torch.equal(classes_of(regions[case].bool()), classes[case].to(torch.uint8))
    # an enhancing voxel outside the predicted whole tumour is not tumour: the regions are nested
    assert classes_of(torch.tensor([False, True, True]).reshape(3, 1, 1, 1)).item() == 0


def test_intensity_augmentation_scales_and_shifts_each_channel_within_its_bounds():
    from medsynth_engine.evaluate import segmenters

    patch = np.stack([np.full((4, 4, 4), v, np.float32) for v in (1.0, -0.5, 0.25)])
    rng = np.random.default_rng(3)
    outs = [segmenters._augment(patch, rng) for _ in range(200)]
    a = segmenters._AUGMENT_AMOUNT
    changed = [o for o in outs if not np.array_equal(o, patch)]
    assert 0.7 < len(changed) / len(outs) < 0.9  # about 80 % of patches are augmented, the rest pass unchanged
    for o in changed:
        assert o.dtype == np.float32 and o.shape == patch.shape
        assert all(np.ptp(o[c]) < 1e-6 for c in range(3))  # one scale and shift per channel, not per voxel
        low = np.array([v * (1 - a) - a if v > 0 else v * (1 + a) - a for v in (1.0, -0.5, 0.25)])
        assert np.all(o[:, 0, 0, 0] >= low - 1e-6) and np.all(o[:, 0, 0, 0] <= low + 2 * a + np.abs([1.0, -0.5, 0.25]) * 2 * a + 1e-6)
    firsts = np.array([o[:, 0, 0, 0] for o in changed])
    assert np.all(firsts.std(axis=0) > 0.05)  # each channel gets its own draw
    assert not np.allclose(firsts[:, 0] - 1.0, firsts[:, 1] + 0.5)  # channels are not shifted together


@pytest.mark.slow
def test_the_score_cache_trains_only_what_changed(tmp_path, monkeypatch):
    from medsynth_engine.evaluate import tstr

    real, synthetic = _cases(8, seed=5), _cases(4, seed=6)
    settings = TstrSettings(steps=3, batch_size=2, patch=16, seeds=1, test_fraction=0.5)
    first = run_tstr_sets(real, {"a": synthetic}, settings, cache=tmp_path)
    trained: list[int] = []
    original = tstr.train_segmenter

    def counting(*args, **kwargs):
        trained.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(tstr, "train_segmenter", counting)
    again = run_tstr_sets(real, {"a": synthetic, "b": _cases(4, seed=7)}, settings, cache=tmp_path)
    assert again["a"] == first["a"]
    assert len(trained) == 2  # only set b's synthetic and real + synthetic models; real, control and set a were kept
    run_tstr_sets(real, {"a": synthetic}, TstrSettings(steps=4, batch_size=2, patch=16, seeds=1, test_fraction=0.5), cache=tmp_path)
    assert len(trained) == 6  # another recipe is another key


def _head_case(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Two channels scaled to [-1, 1] as the sets arrive: background at -1, a head of varied tissue in a ball."""
    grid = np.indices(shape).transpose(*range(1, len(shape) + 1), 0) - (np.array(shape) - 1) / 2
    head = np.linalg.norm(grid, axis=-1) < shape[0] * 0.4
    case = np.full((2, *shape), -1.0, np.float32)
    for c in range(2):
        case[c][head] = rng.uniform(-0.6, 0.9, int(head.sum()))
    return case


def test_inputs_are_standardised_per_case_and_channel_inside_the_head():
    """The fix of recipe 5: a case whose brain sits at another level and spread (T1ce's top percentile on a bright
    enhancing tumour) reaches the segmenter exactly as its twin does; the background is 0."""
    from medsynth_engine.evaluate.segmenters import standardise_in_head

    rng = np.random.default_rng(5)
    for shape in ((12, 12, 12), (16, 16)):
        case = _head_case(rng, shape)
        head = case[0] > -1
        twin = case.copy()
        twin[0][head] = 0.5 * case[0][head] - 0.3  # the same brain, darker and flatter after the percentile scaling
        twin[1][head] = 1.2 * case[1][head] + 0.05
        out = standardise_in_head(np.stack([case, twin]))
        assert out.dtype == np.float32 and out.shape == (2, 2, *shape)
        np.testing.assert_allclose(out[0], out[1], atol=1e-4)
        for c in range(2):
            assert abs(out[0, c][head].mean()) < 1e-5 and out[0, c][head].std() == pytest.approx(1.0, abs=1e-4)
            assert np.all(out[0, c][~head] == 0)
    assert np.all(standardise_in_head(np.full((1, 2, 4, 4, 4), -1.0, np.float32)) == 0)  # an empty volume stays empty, no NaN


def test_predictions_ignore_a_case_level_intensity_change_and_mirror_with_the_input():
    import torch
    from medsynth_engine.evaluate import segmenters

    torch.manual_seed(0)
    model = segmenters._network("unet", 2, 3, 3).eval()
    case = _head_case(np.random.default_rng(6), (16, 16, 16))
    twin = case.copy()
    head = case[0] > -1
    twin[:, head] = 0.7 * case[:, head] + 0.2
    predicted = segmenters.predict_classes(model, np.stack([case, twin]), patch=16)
    assert np.array_equal(predicted[0], predicted[1])
    mirrored = segmenters._Mirrored(model)
    x = torch.from_numpy(segmenters.standardise_in_head(case[None]))
    with torch.no_grad():
        torch.testing.assert_close(mirrored(x.flip(2)), mirrored(x).flip(2), atol=1e-5, rtol=1e-4)
        assert not torch.allclose(model(x.flip(2)), model(x).flip(2), atol=1e-3)  # the bare network is not symmetric


def test_the_prdc_control_keeps_a_subject_on_one_side():
    """2D: the real-vs-real control's halves share no subject (its slices are near-copies); one case a subject keeps
    the random half of the cases it always was."""
    from medsynth_engine.evaluate.run import _control_halves

    subjects = [f"s{k // 6}" for k in range(42)]  # 7 subjects of 6 slices
    first, second, note = _control_halves(subjects, 42)
    assert sorted(np.concatenate([first, second]).tolist()) == list(range(42))
    assert {subjects[i] for i in first}.isdisjoint(subjects[i] for i in second) and 18 <= len(first) <= 24
    assert "whole subjects" in note
    own = [f"case{k}" for k in range(10)]
    first, second, note = _control_halves(own, 10)
    order = np.random.default_rng(0).permutation(10)
    assert first.tolist() == order[:5].tolist() and second.tolist() == order[5:].tolist() and note == ""
