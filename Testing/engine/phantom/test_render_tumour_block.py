"""The tumour's tissue fractions are computed only in the block of the grid its soft edges reach; outside it they
would change no fraction (1 minus an edge there rounds to 1). Rendering with that block and with the whole grid
gives the same case: labels and images identical, fractions equal to float rounding."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from medsynth_engine.phantom import AtlasLoader, Grid, draw_subject, render

CHANNELS = ("t1", "t1ce", "t2", "flair", "seg", "ct", "tissues")


@pytest.fixture(scope="module")
def atlas():
    return AtlasLoader().get()


@pytest.mark.parametrize(("seed", "spacing"), [(5, 2.0), (12, 1.0)])
def test_the_tumour_block_gives_the_case_of_the_whole_grid(atlas, monkeypatch, seed, spacing):
    params = draw_subject(seed, atlas)
    grid = Grid.centred((40, 48, 40), (spacing,) * 3, np.asarray(params.tumour.centre_mm))
    blocked = render(params, atlas, grid, CHANNELS)
    module = sys.modules["medsynth_engine.phantom.render"]
    boxes = []
    box = module._box
    monkeypatch.setattr(module, "_box", lambda present: boxes.append(present.float().mean().item()) or box(present))
    monkeypatch.setattr(module, "_TAIL_WIDTHS", 1e9)  # the block is the whole grid
    whole = render(params, atlas, grid, CHANNELS)
    assert boxes and boxes[0] == 1.0  # the comparison really used the whole grid
    for name in CHANNELS:
        if name == "tissues":
            assert np.abs(blocked[name] - whole[name]).max() <= 3e-8
        else:
            assert np.array_equal(blocked[name], whole[name]), name
