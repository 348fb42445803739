"""The phantom: contrast physics, tumour anatomy, head shells, variation and reproducibility."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from medsynth_engine.phantom import AtlasLoader, Grid, draw_subject, render
from medsynth_engine.phantom.tissues import SEQUENCES, TISSUE_INDEX, TISSUES, flair_null_ti, signal

ALL = ("t1", "t1ce", "t2", "flair", "seg", "ct")


@pytest.fixture(scope="module")
def atlas():
    return AtlasLoader().get()


def _tissue_signal(seq_name: str, tissue: str, t1_override: float | None = None) -> float:
    seq = SEQUENCES[seq_name]
    t = TISSUES[TISSUE_INDEX[tissue]]
    ti = flair_null_ti(seq, TISSUES[TISSUE_INDEX["csf"]].t1_ms) if seq.kind == "flair" else 0.0
    t1 = torch.tensor([t1_override or t.t1_ms])
    return float(signal(seq, t1, torch.tensor([t.t2_ms]), torch.tensor([t.pd]), ti)[0])


def test_signal_equations_give_each_sequence_its_known_contrast():
    s = {seq: {t: _tissue_signal(seq, t) for t in ("white_matter", "grey_matter", "csf", "oedema")} for seq in SEQUENCES}
    assert s["t1"]["white_matter"] > s["t1"]["grey_matter"] > s["t1"]["csf"]
    assert s["t2"]["csf"] > s["t2"]["grey_matter"] > s["t2"]["white_matter"]
    # FLAIR nulls CSF and shows oedema brighter than normal brain.
    assert s["flair"]["csf"] < 0.02 * s["flair"]["white_matter"]
    assert s["flair"]["oedema"] > s["flair"]["grey_matter"] > s["flair"]["white_matter"]


def test_gadolinium_shortens_t1_and_brightens_t1ce():
    pre = _tissue_signal("t1ce", "enhancing_tumour")
    post = _tissue_signal("t1ce", "enhancing_tumour", t1_override=1.0 / (1.0 / 1600.0 + 4.0 * 0.3 / 1000.0))
    assert post > 1.5 * pre


def _render(atlas, seed=3, shape=(40, 48, 40), spacing=4.0, tumour=True, channels=ALL, **changes):
    params = draw_subject(seed, atlas, tumour=tumour)
    params = dataclasses.replace(params, **changes)
    grid = Grid.centred(shape, (spacing,) * 3, atlas.brain_centre_mm + np.asarray(params.translation_mm))
    return params, grid, render(params, atlas, grid, channels)


def test_case_has_all_channels_on_one_grid_with_brats_labels(atlas):
    _, grid, out = _render(atlas)
    assert list(out) == list(ALL)
    for name, array in out.items():
        assert array.shape == grid.shape, name
    assert out["seg"].dtype == np.uint8 and set(np.unique(out["seg"])) <= {0, 1, 2, 4}
    assert {2, 4} <= set(np.unique(out["seg"]))
    for name in ("t1", "t1ce", "t2", "flair", "ct"):
        assert out[name].dtype == np.int16


def test_tumour_compartments_look_as_they_do_on_real_scans(atlas):
    _, _, out = _render(atlas, seed=11, shape=(64, 72, 64), spacing=2.5)
    seg = out["seg"]
    brain = out["t1"] > 0
    normal = brain & (seg == 0)
    mean = {k: lambda m, k=k: float(out[k][m].mean()) for k in ("t1", "t1ce", "t2", "flair")}
    et, ed = seg == 4, seg == 2
    assert et.sum() > 0 and ed.sum() > 0
    # Enhancing tumour lights up after contrast; oedema is bright on FLAIR and T2.
    assert mean["t1ce"](et) > 1.3 * mean["t1"](et)
    assert mean["t1ce"](et) > mean["t1ce"](normal)
    assert mean["flair"](ed) > 1.2 * mean["flair"](normal)
    assert mean["t2"](ed) > mean["t2"](normal & (out["t2"] < np.percentile(out["t2"][normal], 80)))
    # Oedema surrounds the core: every core voxel is closer to the tumour centre than the oedema's far edge.
    assert (seg[brain] > 0).mean() < 0.5


def test_mr_is_skull_stripped_and_ct_has_skull_and_air(atlas):
    _, _, out = _render(atlas, shape=(56, 64, 56), spacing=3.0)
    brain = out["t1"] > 0
    assert (out["flair"][~brain] == 0).all()
    ct = out["ct"]
    assert (ct > 700).sum() > 0.02 * ct.size  # a skull shell
    assert np.median(ct[:4, :4, :]) < -900  # air in the corners, around the head
    assert 15 < np.median(ct[brain]) < 45  # brain parenchyma in HU


def test_no_tumour_gives_empty_labels_and_no_enhancement(atlas):
    params, _, out = _render(atlas, tumour=False)
    assert params.tumour is None
    assert not out["seg"].any()


def test_same_seed_same_voxels_and_different_seed_different_subject(atlas):
    _, _, a = _render(atlas, seed=5)
    _, _, b = _render(atlas, seed=5)
    _, _, c = _render(atlas, seed=6)
    for name in ALL:
        assert np.array_equal(a[name], b[name]), name
    assert not np.array_equal(a["t1"], c["t1"])
    p5, p6 = draw_subject(5, atlas), draw_subject(6, atlas)
    assert p5.tumour.centre_mm != p6.tumour.centre_mm and p5.scale != p6.scale


def test_ventricle_enlargement_adds_csf_around_the_ventricles(atlas):
    from medsynth_engine.phantom.params import atlas_to_subject

    kw = dict(seed=4, tumour=False, channels=("t2",), shape=(48, 56, 48), spacing=3.0)
    params, grid, small = _render(atlas, ventricle_enlargement=1.0, **kw)
    _, _, large = _render(atlas, ventricle_enlargement=2.0, **kw)
    centre = atlas_to_subject(params, atlas, atlas.ventricle_centre_mm)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in grid.shape], indexing="ij"), -1)
    xyz = ijk @ grid.affine[:3, :3].T + grid.affine[:3, 3]
    near = np.linalg.norm(xyz - centre, axis=-1) < 30.0
    threshold = np.percentile(small["t2"][small["t2"] > 0], 90)
    assert (large["t2"][near] > threshold).sum() > 1.2 * (small["t2"][near] > threshold).sum()


def test_rician_noise_floor_follows_its_parameter(atlas):
    def air_level(noise_fraction: float) -> float:
        params = dataclasses.replace(draw_subject(8, atlas, tumour=False), noise_fraction=noise_fraction)
        grid = Grid.centred((40, 48, 40), (5.0,) * 3, atlas.brain_centre_mm)
        t1 = render(params, atlas, grid, ("t1",), skull_strip=False)["t1"]
        return float(t1[:3, :3, :].mean())  # air in the corners: pure Rician noise, mean = sigma * sqrt(pi / 2)

    quiet, loud = air_level(0.01), air_level(0.04)
    assert 3.0 < loud / quiet < 5.0
    assert 0.7 < quiet / (0.01 * 1000 * draw_subject(8, atlas).gain * np.sqrt(np.pi / 2)) < 1.3


def test_params_roundtrip_through_json(atlas):
    import json

    from medsynth_engine.phantom import SubjectParams

    params = draw_subject(9, atlas)
    again = SubjectParams.from_dict(json.loads(json.dumps(params.to_dict())))
    assert again == params


def test_neutral_phantom_t1_matches_the_real_population_template():
    """The phantom's T1 of the atlas itself correlates with the MNI152 T1 template (real scans, averaged)."""
    from medsynth_engine.phantom.validate import correlations

    assert correlations(spacing=4.0)["phantom T1 vs real T1 template"] > 0.9
