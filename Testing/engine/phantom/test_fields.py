"""Smooth fields on grids: the separable evaluation is the Fourier sum itself, the upsampling is trilinear."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from medsynth_engine.phantom.fields import FourierField, upsample_linear


@pytest.mark.parametrize("components", [1, 3])
def test_field_on_axes_is_the_sum_of_its_modes_at_every_point(components):
    field = FourierField(7, wavelength_mm=12.0, components=components)
    axes = [np.linspace(-40.0, 35.0, 9), np.linspace(-60.0, 50.0, 7), np.linspace(-30.0, 45.0, 5)]
    points = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).astype(np.float64)  # (9, 7, 5, 3)
    direct = np.einsum("cm,xyzcm->cxyz", field.amp, np.sin(np.einsum("xyzd,cmd->xyzcm", points, field.omega) + field.phase))
    assert np.allclose(field.on_axes(axes), direct, atol=1e-5)
    assert 0.3 < float(np.std(direct)) < 3.0  # a field with substance, not zeros


@pytest.mark.parametrize("fine", [(40, 52, 31), (9, 29, 6)])
def test_upsampling_is_trilinear_with_corners_aligned_and_boxes_cut_from_it(fine):
    coarse = torch.randn(3, 9, 29, 4)
    full = F.interpolate(coarse[None], size=fine, mode="trilinear", align_corners=True)[0]
    assert torch.allclose(upsample_linear(coarse, fine), full, atol=1e-5)
    box = (slice(2, 7), slice(None), slice(1, 4))
    assert torch.allclose(upsample_linear(coarse, fine, box), full[(slice(None), *box)], atol=1e-5)
