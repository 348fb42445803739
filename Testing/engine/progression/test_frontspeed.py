"""Growth follows white matter faster than grey, measured on a phantom case at 2 mm: the visible front's speed in
white over grey matter, recorded in the series manifest, is well above 1 with D_white = 5 D_grey and about 1 when
the two diffusivities are equal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from medsynth_engine.generate import GenerateRequest, generate_set
from medsynth_engine.progression.frontspeed import front_speeds
from medsynth_engine.progression.growth import GrowthParams
from medsynth_engine.progression.series import ProgressRequest, run_progress


def test_front_speeds_reads_the_speed_of_a_known_front_in_each_tissue():
    """A plane front crossing white matter at 0.2 mm/day and grey at 0.05 mm/day: the medians are those speeds."""
    spacing = np.array([2.0, 2.0, 2.0])
    x = np.arange(40)[:, None, None] * spacing[0] * np.ones((1, 8, 8))
    white = np.zeros(x.shape, bool)
    white[:, :4] = True
    arrival = np.where(white, x / 0.2, x / 0.05)
    arrival[:2] = 0.0  # the starting tumour
    arrival[30:] = -1.0  # not reached yet
    result = front_speeds(arrival, white, ~white, spacing)
    assert result["white_mm_per_day"] == pytest.approx(0.2, rel=1e-3) and result["grey_mm_per_day"] == pytest.approx(0.05, rel=1e-3)
    assert result["white_grey_ratio"] == pytest.approx(4.0, rel=1e-3) and result["white_voxels"] > 0
    assert front_speeds(np.zeros(x.shape), white, ~white, spacing)["white_grey_ratio"] is None  # nothing crossed yet


@pytest.mark.slow
def test_the_visible_front_moves_faster_in_white_matter_on_a_phantom_case(registry, tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a few seconds of work in all: threads only contend on a shared machine
    try:
        fronts = _fronts(registry, tmp_path)
    finally:
        torch.set_num_threads(threads)
    for fast, even in zip(fronts[5.0], fronts[1.0], strict=True):
        assert fast["white_voxels"] > 500 and fast["grey_voxels"] > 100 and even["grey_voxels"] > 100, (fast, even)
        assert fast["white_grey_ratio"] > 1.15, fronts  # measured 1.30 and 1.31 at 6 and 12 months
        assert 0.8 < even["white_grey_ratio"] < 1.08, fronts  # measured 0.95 and 0.91
        assert fast["white_mm_per_day"] > 1.5 * even["white_mm_per_day"], fronts  # D_white 5x larger: measured 1.99x and 2.48x


def _fronts(registry, tmp_path: Path) -> dict[float, list[dict]]:
    """The manifest's front speeds at 6 and 12 months, grown from a 2 mm phantom case's tumour at ratio 5 and 1."""
    cohort = {"strata": [{"name": "deep-left", "count": 1, "tumour": {"volume_ml": [4, 10], "enhancing": True, "centre_mm": [-26, -12, 20], "radius_mm": 12}}]}
    out = generate_set(
        GenerateRequest(model="phantom", n=1, seed=11, out=tmp_path / "set", shape=(48, 56, 48), spacing=(2.0, 2.0, 2.0), cohort=cohort, channels=("t1", "t2", "flair", "seg")),
        registry,
    )
    case = out / json.loads((out / "manifest.json").read_text())["cases"][0]["id"]
    fronts = {}
    for ratio in (5.0, 1.0):
        series = run_progress(ProgressRequest(case=case, model="growth", months=[6, 12], out=tmp_path / f"ratio{ratio:g}", growth=GrowthParams(white_grey_ratio=ratio)))
        manifest = json.loads((Path(series) / "manifest.json").read_text())
        fronts[ratio] = [tp["front_speed"] for tp in manifest["time_points"]]
    return fronts
