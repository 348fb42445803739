"""Achieved against asked from a cohort set's manifest: counts per stratum, constraints met, and the report's table."""

from __future__ import annotations

from medsynth_engine.cohort.spec import parse_cohort
from medsynth_engine.cohort.summary import cohort_summary, summary_html


def _case(stratum: str, **attributes) -> dict:
    base = {"tumour": True, "volume_ml": 10.0, "hemisphere": "left", "lobe": "frontal", "enhancing": False, "centroid_mni_mm": [-30, 10, 20]}
    return {"stratum": stratum, "attributes": {**base, **attributes}}


def test_summary_counts_written_and_met_cases_per_stratum():
    spec = parse_cohort({"strata": [
        {"name": "small-left", "count": 3, "tumour": {"volume_ml": [5, 20], "hemisphere": "left", "enhancing": False}},
        {"name": "healthy", "count": 2, "tumour": "none"},
    ]})
    manifest = {
        "cohort": spec.to_dict(),
        "cases": [
            _case("small-left", volume_ml=6.0),
            _case("small-left", volume_ml=19.0),
            _case("small-left", volume_ml=25.0, hemisphere="right", enhancing=True),  # misses three constraints
            {"stratum": "healthy", "attributes": {"tumour": False, "volume_ml": 0.0}},
        ],
    }
    rows = {r["name"]: r for r in cohort_summary(manifest)["strata"]}
    assert (rows["small-left"]["asked"], rows["small-left"]["written"], rows["small-left"]["met"]) == (3, 3, 2)
    assert rows["small-left"]["volume_ml"] == {"min": 6.0, "median": 19.0, "max": 25.0}
    assert rows["small-left"]["hemisphere"] == {"left": 2, "right": 1} and rows["small-left"]["enhancing"] == 1
    assert (rows["healthy"]["asked"], rows["healthy"]["written"], rows["healthy"]["met"]) == (2, 1, 1)
    html = summary_html(cohort_summary(manifest))
    assert "<td>small-left</td><td>3</td><td>3</td><td>2</td>" in html and "left 2, right 1" in html
    assert cohort_summary({"cases": []}) is None
