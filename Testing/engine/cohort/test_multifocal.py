"""Multifocal strata: N separate foci (connected components of the written label map), their total volume inside
the stratum's range, the count recorded per case and in the summary, and strata that cannot hold N foci refused."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from medsynth_engine.cohort.spec import parse_cohort
from medsynth_engine.cohort.summary import cohort_summary
from medsynth_engine.errors import MedSynthError
from medsynth_engine.generate import GenerateRequest, generate_set
from medsynth_engine.phantom import SubjectParams
from scipy import ndimage

SHAPE, SPACING = (32, 36, 32), (5.0, 5.0, 5.0)


@pytest.mark.parametrize(("value", "words"), [(0, "within 1 to 5"), ([3, 2], "within 1 to 5"), (6, "within 1 to 5"), (2.5, "whole number"), (True, "whole number")])
def test_a_bad_focus_count_is_refused_in_one_sentence(value, words):
    with pytest.raises(MedSynthError, match=words):
        parse_cohort({"strata": [{"name": "m", "count": 1, "tumour": {"multifocal": value}}]}, "cohort.yaml")
    assert parse_cohort({"strata": [{"name": "m", "count": 1, "tumour": {"multifocal": [2, 4]}}]}).strata[0].tumour.multifocal == (2, 4)


@pytest.mark.slow
def test_multifocal_strata_write_separate_foci_whose_total_volume_is_in_range(tmp_path, registry):
    cohort = {"strata": [
        {"name": "three", "count": 1, "tumour": {"multifocal": 3, "volume_ml": [20, 60]}},
        {"name": "two-left", "count": 1, "tumour": {"multifocal": 2, "hemisphere": "left", "enhancing": True}},
    ]}
    out = generate_set(GenerateRequest(model="phantom", n=1, seed=2, out=tmp_path / "set", shape=SHAPE, spacing=SPACING, cohort=cohort), registry)
    manifest = json.loads((out / "manifest.json").read_text())
    for entry in manifest["cases"]:
        image = nib.load(str(out / entry["files"]["seg"]))
        seg = np.asanyarray(image.dataobj)
        asked = 3 if entry["stratum"] == "three" else 2
        # Separate even through an edge or a corner: the 26-neighbourhood, stricter than the 6 of ndimage's default.
        assert ndimage.label(seg > 0, structure=np.ones((3, 3, 3)))[1] == asked == entry["attributes"]["foci"]
        assert len(SubjectParams.from_dict(entry["params"]["subject"]).tumour.satellites) == asked - 1
        volume = np.count_nonzero(seg) * float(np.prod(SPACING)) / 1000.0
        if entry["stratum"] == "three":
            assert 20 <= volume <= 60 and entry["attributes"]["volume_ml"] == pytest.approx(volume, abs=1e-3)
        else:
            assert entry["attributes"]["hemisphere"] == "left" and (seg == 4).any()
            lesion_x = image.affine[:3, :3] @ np.argwhere(seg > 0).T + image.affine[:3, 3:4]
            brain_x = (image.affine @ np.r_[np.argwhere(np.asanyarray(nib.load(str(out / entry["files"]["t1"])).dataobj) > 0).mean(0), 1.0])[0]
            labelled, _ = ndimage.label(seg > 0, structure=np.ones((3, 3, 3)))
            for focus in (1, 2):  # every focus lies on the left of the subject's midline, not only their centroid
                assert lesion_x[0][labelled[seg > 0] == focus].mean() < brain_x
    rows = {r["name"]: r for r in cohort_summary(manifest)["strata"]}
    assert rows["three"]["foci"] == {"3": 1} and rows["two-left"]["foci"] == {"2": 1}
    assert rows["three"]["met"] == rows["two-left"]["met"] == 1


@pytest.mark.parametrize(("tumour", "words"), [
    ({"multifocal": 2, "centre_mm": [-28, -10, 25], "radius_mm": 12}, "its allowed sites do not hold 2 tumour foci 30 mm apart"),
    ({"multifocal": 5, "hemisphere": "left", "volume_ml": [400, 800]}, "the largest tumour of 5 separate foci on this grid is about"),
])
def test_foci_that_cannot_be_kept_apart_are_refused_before_anything_is_written(tmp_path, registry, tumour, words):
    cohort = {"strata": [{"name": "tight", "count": 1, "tumour": tumour}]}
    out = tmp_path / "set"
    with pytest.raises(MedSynthError, match=f"Stratum 'tight' cannot be met: {words}") as info:
        generate_set(GenerateRequest(model="phantom", n=1, seed=0, out=out, shape=SHAPE, spacing=SPACING, cohort=cohort), registry)
    assert "\n" not in str(info.value)
    assert not out.exists() and not list(tmp_path.glob(".set.partial-*"))
