"""The scanner effects computed on the brain's bounding box only give the voxels the whole grid gives."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from medsynth_engine.phantom import AtlasLoader, Grid, draw_subject, render
from medsynth_engine.phantom.acquisition import blur, blur_radii

MR = ("t1", "t1ce", "t2", "flair")


@pytest.fixture(scope="module")
def atlas():
    return AtlasLoader().get()


def test_blurring_a_block_gives_the_whole_volume_s_values_inside_its_margin():
    volumes = torch.rand(2, 30, 32, 28, dtype=torch.float32)
    fwhm = [3.0, 2.5, 4.0]
    radii = blur_radii(fwhm)
    assert all(r > 0 for r in radii)
    box = (slice(6, 20), slice(0, 25), slice(9, 28))  # inside, at the low edge, at the high edge
    block = tuple(slice(max(0, s.start - r), min(n, s.stop + r)) for s, r, n in zip(box, radii, volumes.shape[1:], strict=True))
    inner = tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(box, block, strict=True))
    whole = blur(volumes, fwhm)[(slice(None), *box)]
    assert torch.equal(blur(volumes[(slice(None), *block)], fwhm)[(slice(None), *inner)], whole)
    # One voxel less of margin and the block's edge shows: the margin is needed, not merely safe.
    short = tuple(slice(b.start + 1, b.stop) if b.start > 0 else b for b in block)
    shifted = tuple(slice(s.start - b.start, s.stop - b.start) for s, b in zip(box, short, strict=True))
    assert not torch.equal(blur(volumes[(slice(None), *short)], fwhm)[(slice(None), *shifted)], whole)


def test_skull_stripped_mr_is_the_unstripped_case_inside_the_brain_and_zero_outside(atlas):
    # A coarse grid around the whole head (the brain's box ends inside it) and a blur that reaches several voxels.
    params = dataclasses.replace(draw_subject(7, atlas), acquisition_fwhm_mm=[5.0, 4.0, 6.0])
    grid = Grid.centred((96, 112, 96), (1.8,) * 3, atlas.brain_centre_mm + np.asarray(params.translation_mm))
    channels = (*MR, "brain", "ct")
    stripped = render(params, atlas, grid, channels, supersample=False)
    whole = render(params, atlas, grid, channels, supersample=False, skull_strip=False)
    brain = stripped["brain"].astype(bool)
    assert 0.1 < brain.mean() < 0.6 and not brain[0].any() and not brain[-1].any()
    assert np.array_equal(stripped["ct"], whole["ct"])
    for name in MR:
        assert not stripped[name][~brain].any(), name
        # The bias field on the box is interpolated by a smaller matrix product: float rounding may move a voxel by 1.
        difference = np.abs(stripped[name][brain].astype(np.int32) - whole[name][brain].astype(np.int32))
        assert difference.max() <= 1 and (difference > 0).mean() < 1e-3, name
