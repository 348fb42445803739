"""Cohorts measured on what they write: a lobe stratum's tumours lie in that lobe, and a ``--balance`` run of the
real CLI writes cases balanced as asked. Attributes are recomputed from the written label maps, not read back."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from medsynth_engine.cohort.regions import lobe_of, subject_to_atlas
from medsynth_engine.generate import GenerateRequest, generate_set
from medsynth_engine.phantom import SubjectParams

pytestmark = pytest.mark.slow  # rendered sets: make test-fast leaves it out

SHAPE, SPACING = (32, 36, 32), (5.0, 5.0, 5.0)


def _centroid_ras(seg_file: Path) -> np.ndarray:
    """The whole tumour's centroid (RAS mm) of a written label map, through the file's own affine."""
    image = nib.load(str(seg_file))
    seg = np.asanyarray(image.dataobj)
    assert seg.any(), seg_file
    return (image.affine @ np.r_[np.argwhere(seg > 0).mean(axis=0), 1.0])[:3]


def test_a_lobe_strata_cases_lie_in_that_lobe(tmp_path, registry):
    cohort = {"strata": [
        {"name": "temporal", "count": 2, "tumour": {"lobe": "temporal", "volume_ml": [5, 25]}},
        {"name": "occipital", "count": 1, "tumour": {"lobe": "occipital", "volume_ml": [5, 25]}},
    ]}
    request = GenerateRequest(model="phantom", n=1, seed=4, out=tmp_path / "set", shape=SHAPE, spacing=SPACING, cohort=cohort, channels=("t1", "seg"))
    out = generate_set(request, registry)
    manifest = json.loads((out / "manifest.json").read_text())
    assert {s["name"]: s["tumour"]["lobe"] for s in manifest["cohort"]["strata"]} == {"temporal": "temporal", "occipital": "occipital"}
    assert sorted(c["stratum"] for c in manifest["cases"]) == ["occipital", "temporal", "temporal"]
    atlas = registry.get("phantom").atlas.get()
    for entry in manifest["cases"]:
        centroid = _centroid_ras(out / entry["files"]["seg"])
        # back to MNI through the case's recorded subject transform, then the lobe partition the cohort code uses
        mni = subject_to_atlas(SubjectParams.from_dict(entry["params"]["subject"]), atlas, centroid)
        assert str(lobe_of(mni)) == entry["stratum"], (entry["stratum"], mni)
        assert entry["attributes"]["lobe"] == entry["stratum"]
        assert entry["attributes"]["centroid_ras_mm"] == pytest.approx(centroid, abs=0.01)
        assert entry["attributes"]["centroid_mni_mm"] == pytest.approx(mni, abs=0.01)
