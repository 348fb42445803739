"""Smooth fields on grids: the separable evaluation is the Fourier sum itself, the upsampling is trilinear."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from medsynth_engine.phantom.fields import FourierField, coarse_axes, support, upsample_linear


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
    # Float64, seeded: the two float32 paths sum in different orders, and an unseeded float32 draw once landed
    # 1e-5 apart (CI); in float64 only the float32 interpolation weights differ, at about 1e-7.
    coarse = torch.randn(3, 9, 29, 4, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    full = F.interpolate(coarse[None], size=fine, mode="trilinear", align_corners=True)[0]
    assert torch.allclose(upsample_linear(coarse, fine), full, rtol=0, atol=2e-6)
    box = (slice(2, 7), slice(None), slice(1, 4))
    assert torch.allclose(upsample_linear(coarse, fine, box), full[(slice(None), *box)], rtol=0, atol=2e-6)
    # and in float32, as the renderer runs it, to float32 precision relative to the values
    c32 = coarse.float()
    assert torch.allclose(upsample_linear(c32, fine), full.float(), rtol=1e-5, atol=1e-5)


def test_a_box_needs_only_the_coarse_samples_its_support_names():
    """The renderer evaluates a small box's field on its support only: the same values as cutting the box out."""
    field, fine = FourierField(5, wavelength_mm=10.0), (60, 72, 48)
    axes = coarse_axes([-30.0, -40.0, -20.0], [29.0, 31.0, 27.0], fine, 1.25, [1.0, 1.0, 1.0])
    whole = torch.from_numpy(field.on_axes(axes))
    sizes = [len(a) for a in axes]
    for box in [(slice(20, 41), slice(50, 70), slice(3, 30)), (slice(0, 60), slice(71, 72), slice(0, 1))]:
        spans = [support(sizes[a], fine[a], box[a]) for a in range(3)]
        assert sum(s.stop - s.start for s in spans) < sum(sizes)  # fewer samples than the whole coarse grid
        part = torch.from_numpy(field.on_axes([axes[a][spans[a]] for a in range(3)]))
        assert torch.equal(upsample_linear(part, fine, box, coarse_sizes=sizes), upsample_linear(whole, fine, box))
