"""The torch renderer draws the same cases as the renderer it replaced (b56a298), case seed for case seed.

``render_golden.json`` holds statistics of four small cases recorded from the old renderer: per-channel mean,
standard deviation, percentiles and 8^3 block means (where things are), and label voxel counts. The new
renderer computes in a different order, so a stored value may move by one unit where float rounding crosses
a .5; anything more (a shifted structure, another noise draw, another tumour) breaks these tolerances.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from medsynth_engine.phantom import AtlasLoader
from render_golden import CASES, GOLDEN, case_stats, render_case

#: Intensity units (MR arbitrary units with white matter ~1000, CT in HU): mean, std and block means; percentiles.
MEAN_TOL, PERCENTILE_TOL = 0.05, 1.0
#: Labels: voxels that may change class, as a share of the label's voxels (plus two).
LABEL_SHARE = 0.002


@pytest.fixture(scope="module")
def atlas():
    return AtlasLoader().get()


@pytest.fixture(scope="module")
def golden():
    return json.loads(GOLDEN.read_text())


@pytest.mark.parametrize("name", list(CASES))
def test_case_matches_the_old_renderer(atlas, golden, name):
    stats, want = case_stats(render_case(atlas, name)), golden[name]
    assert set(stats) == set(want)
    for channel, ref in want.items():
        got = stats[channel]
        if channel == "seg":
            assert set(got["counts"]) == set(ref["counts"]), channel
            for code, count in ref["counts"].items():
                assert abs(got["counts"][code] - count) <= LABEL_SHARE * count + 2, (name, code)
            continue
        assert got["mean"] == pytest.approx(ref["mean"], abs=MEAN_TOL), (name, channel)
        assert got["std"] == pytest.approx(ref["std"], abs=MEAN_TOL), (name, channel)
        assert np.abs(np.subtract(got["percentiles"], ref["percentiles"])).max() <= PERCENTILE_TOL, (name, channel)
        assert np.abs(np.subtract(got["blocks"], ref["blocks"])).max() <= MEAN_TOL + 0.01, (name, channel)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_renders_the_cpu_case(atlas):
    from medsynth_engine.phantom import Grid, draw_subject, render

    params = draw_subject(5, atlas)
    grid = Grid.centred((64, 64, 64), (1.0,) * 3, np.asarray(params.tumour.centre_mm))
    channels = ("t1", "t1ce", "t2", "flair", "seg", "ct")
    cpu, gpu = render(params, atlas, grid, channels), render(params, atlas, grid, channels, device="cuda")
    for name in channels:
        difference = np.abs(cpu[name].astype(np.int32) - gpu[name].astype(np.int32))
        assert difference.max() <= (0 if name == "seg" else 1) and (difference > 0).mean() < 0.001, name


def test_loaders_in_one_process_share_the_atlas_and_what_the_renderer_derived(atlas):
    """A warm engine builds the atlas once: another loader (another model, a study render) gets the same one."""
    render_case(atlas, "seed3-4mm")
    again = AtlasLoader().get()
    assert again is atlas
    assert again.tensors["cpu"] is atlas.tensors["cpu"]
