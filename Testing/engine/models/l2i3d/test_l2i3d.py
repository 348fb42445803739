"""l2i3d (labels first, then image): the labeller, training at 16^3 with exact resume, seeded generation, masks,
and the shipped renderer's contrasts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from medsynth_engine.errors import MedSynthError
from medsynth_engine.models.l2i3d.labels import CLASSES, label_map, tissue_labels, tumour_codes
from medsynth_engine.models.l2i3d.plugin import L2I3DModel, subject_seed
from medsynth_engine.training.finetune import FinetuneRequest, run_finetune
from medsynth_engine.weights import shipped_folder
from safetensors.torch import load_file

TINY = dict(model="l2i3d", resolution=16, spacing=8.0, width=4, batch_size=2, seed=3, checkpoint_every=2, log_every=1)


def _three_tissues(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A 'T1' of three nested shells (CSF dark outside, grey, white bright inside) with noise, its brain and truth."""
    grid = np.indices((24, 24, 24)).astype(float) - 11.5
    r = np.sqrt((grid**2).sum(0))
    truth = np.select([r < 5, r < 8, r < 11], [3, 2, 1], 0).astype(np.uint8)
    t1 = np.choose(truth, [-1.0, -0.5, 0.1, 0.6]) + rng.normal(0, 0.05, truth.shape) * (truth > 0)
    return t1, truth > 0, truth


def test_tissue_labels_recover_three_classes_ordered_by_t1_brightness():
    t1, brain, truth = _three_tissues(np.random.default_rng(0))
    labels = tissue_labels(t1, brain)
    assert (labels[~brain] == 0).all()
    assert (labels[brain] == truth[brain]).mean() > 0.95
    # the scanner's scale and offset do not change the classes
    np.testing.assert_array_equal(tissue_labels(t1 * 300.0 + 40.0, brain), labels)


def test_label_map_puts_the_tumour_classes_on_top_and_round_trips_the_codes():
    t1, brain, truth = _three_tissues(np.random.default_rng(1))
    seg = np.zeros(truth.shape, dtype=np.uint8)
    seg[10:14, 10:14, 10:14] = 2
    seg[11:13, 11:13, 11:13] = 4
    seg[11, 11, 11] = 1
    classes = label_map(t1, brain, seg)
    assert set(np.unique(classes[seg > 0])) == {CLASSES.index("necrosis"), CLASSES.index("oedema"), CLASSES.index("enhancing_tumour")}
    np.testing.assert_array_equal(tumour_codes(classes), seg)
    assert set(np.unique(classes[(seg == 0) & brain])) <= {1, 2, 3}


def test_subject_seeds_differ_from_the_phantom_seeds_and_never_collide():
    seeds = [subject_seed(s) for s in range(10_000)]
    assert len(set(seeds)) == len(seeds)
    assert not set(seeds) & set(range(10_000))


@pytest.mark.slow
def test_finetune_l2i3d_then_resume_exactly_and_generate(make_phantom_set, tmp_path):
    data = make_phantom_set(n=4, shape=(16, 16, 16), spacing=8.0, seed=31)
    seen: list[dict] = []
    straight = run_finetune(FinetuneRequest.make(data=data, out=tmp_path / "a", steps=4, **TINY), progress=seen.append)
    steps = [p for p in seen if "losses" in p]
    assert [p["step"] for p in steps] == [1, 2, 3, 4] and set(steps[-1]["losses"]) == {"nll", "l1_mean"}
    card = json.loads((straight / "model.json").read_text())
    assert card["architecture"]["name"] == "l2i3d" and card["kind"] == "translation"
    assert card["channels"] == ["t1", "t1ce", "t2", "flair", "seg"] and card["shape"] == [16] * 3 and card["spacing"] == [8.0] * 3
    assert set(card["preprocessing"]["normalisation"]["channels"]) == {"t1", "t1ce", "t2", "flair"}
    assert sorted(p.name for p in (straight / "samples").iterdir()) == ["mosaic_step2.png", "mosaic_step4.png"]

    calls = {"n": 0}

    def stop_after_two() -> bool:
        calls["n"] += 1
        return calls["n"] >= 2

    half = run_finetune(FinetuneRequest.make(data=data, out=tmp_path / "b", steps=4, **TINY), should_stop=stop_after_two)
    assert json.loads((half / "checkpoint" / "state.json").read_text())["steps_done"] == 2
    run_finetune(FinetuneRequest.make(data=data, out=tmp_path / "b", steps=4, resume=True, **TINY))
    a, b = load_file(str(straight / "model.safetensors")), load_file(str(half / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)

    model = L2I3DModel(straight)
    kwargs = dict(channels=("t1", "flair", "seg"), shape=(16, 16, 16), spacing=(8.0,) * 3, device="cpu")
    one, again = model.generate(seed=5, tumour=True, **kwargs), model.generate(seed=5, tumour=True, **kwargs)
    for c in one.arrays:
        np.testing.assert_array_equal(one.arrays[c], again.arrays[c])
    other = model.generate(seed=6, tumour=True, **kwargs)
    assert not np.array_equal(one.arrays["t1"], other.arrays["t1"])
    assert one.arrays["t1"].dtype == np.int16 and one.arrays["seg"].dtype == np.uint8
    healthy = model.generate(seed=5, tumour=False, **kwargs)
    assert not healthy.arrays["seg"].any()
    # outside the brain is background, as in the skull-stripped training data
    assert (one.arrays["t1"][model.label_map(5, tumour=True, mask=None) == 0] <= one.arrays["t1"].min() + 1).all()
    # the style model (4 training cases: at most 3 components) is in the weights, the card and every sample
    assert a["style.basis"].shape == (3, 4 * (7 + 8**3 + 1)) and a["style.scale"].shape == (3,) and (a["style.scale"] > 0).all()
    assert "principal components" in card["preprocessing"]["training"]["style"] and one.params["style"] is True
    model.style = None  # the same sample without its style differs by a smooth gain inside the brain only
    plain = model.generate(seed=5, tumour=True, **kwargs)
    brain = model.label_map(5, tumour=True, mask=None) > 0
    assert not np.array_equal(one.arrays["t1"][brain], plain.arrays["t1"][brain])
    np.testing.assert_array_equal(one.arrays["t1"][~brain], plain.arrays["t1"][~brain])

    with pytest.raises(MedSynthError, match="leave out --width"):
        run_finetune(FinetuneRequest.make(data=data, out=tmp_path / "c", steps=1, model=str(straight), width=8))


@pytest.mark.slow
def test_generate_follows_a_drawn_mask_inside_the_brain(tmp_path):
    import nibabel as nib
    from medsynth_engine.data.preprocess import grid_affine

    folder = shipped_folder("l2i3d-phantom")
    assert folder is not None, "the l2i3d-phantom weights must ship"
    model = L2I3DModel(folder)
    shape, spacing = tuple(model.card.shape), tuple(model.card.spacing)
    brain = model.label_map(11, tumour=False, mask=None) > 0
    mask = np.zeros(shape, dtype=np.uint8)
    centre = np.array(np.nonzero(brain)).mean(1).astype(int) + np.array([8, 0, 4])
    box = tuple(slice(c - 5, c + 5) for c in centre)
    mask[box] = 2
    inner = tuple(slice(c - 2, c + 2) for c in centre)
    mask[inner] = 4
    path = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(mask, grid_affine(shape, spacing)), str(path))
    case = model.generate(seed=11, channels=("flair", "t1ce", "seg"), shape=shape, spacing=spacing, tumour=True, device="cpu", mask=path)
    seg = case.arrays["seg"]
    np.testing.assert_array_equal(seg[mask > 0], np.where(brain, mask, 0)[mask > 0])
    assert not seg[mask == 0].any()  # the subject's own tumour is not drawn: only the mask's
    flair, t1ce = (case.arrays[c].astype(float) for c in ("flair", "t1ce"))
    healthy_brain = brain & (mask == 0)
    assert flair[(seg == 2)].mean() > 1.2 * flair[healthy_brain].mean()  # oedema is bright on FLAIR
    assert t1ce[(seg == 4)].mean() > 1.2 * t1ce[healthy_brain].mean()  # enhancing tumour is bright on T1ce
    outside = np.zeros(shape, dtype=np.uint8)
    outside[:4, :4, :4] = 2
    nib.save(nib.Nifti1Image(outside, grid_affine(shape, spacing)), str(tmp_path / "outside.nii.gz"))
    with pytest.raises(MedSynthError, match="outside the generated brain"):
        model.generate(seed=11, channels=("t1",), shape=shape, spacing=spacing, tumour=True, device="cpu", mask=tmp_path / "outside.nii.gz")


@pytest.mark.slow
def test_the_shipped_renderer_draws_the_phantom_contrasts():
    """Per-class mean intensities of a shipped sample keep the contrasts of the data it learned from."""
    model = L2I3DModel(shipped_folder("l2i3d-phantom"))
    shape, spacing = tuple(model.card.shape), tuple(model.card.spacing)
    case = model.generate(seed=2, channels=("t1", "t2", "flair", "seg"), shape=shape, spacing=spacing, tumour=True, device="cpu")
    classes = model.label_map(2, tumour=True, mask=None)
    mean = {c: {k: case.arrays[c][classes == k].mean() for k in range(1, 4)} for c in ("t1", "t2")}
    assert mean["t1"][3] > mean["t1"][2] > mean["t1"][1]  # T1: white > grey > CSF
    assert mean["t2"][1] > mean["t2"][2] > mean["t2"][3]  # T2: CSF > grey > white
    assert case.arrays["flair"][classes == 5].mean() > 1.2 * case.arrays["flair"][classes == 3].mean()
