"""Achieved against asked: per stratum, how many cases, and the distribution of what they realised.

Read from a set's ``manifest.json`` (each case's ``stratum`` and ``attributes``), so it works on any cohort set
without opening an image; ``medsynth generate`` prints it and ``medsynth evaluate`` puts it in its report.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["cohort_summary", "summary_lines", "rows_text", "summary_html"]


def cohort_summary(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """``{"strata": [{name, asked, written, constraints, volume_ml, hemisphere, lobe, enhancing, met}]}``, or None for a non-cohort set."""
    cohort = manifest.get("cohort")
    if not cohort:
        return None
    from .attributes import violations
    from .spec import parse_cohort

    spec = parse_cohort(cohort, "the manifest's cohort")
    rows = []
    for stratum in spec.strata:
        cases = [c.get("attributes", {}) for c in manifest.get("cases", []) if c.get("stratum") == stratum.name]
        volumes = [a["volume_ml"] for a in cases if a.get("tumour")]
        rows.append(
            {
                "name": stratum.name,
                "asked": stratum.count,
                "written": len(cases),
                "constraints": stratum.to_dict()["tumour"],
                "volume_ml": _spread(volumes),
                "hemisphere": dict(Counter(a["hemisphere"] for a in cases if a.get("tumour"))),
                "lobe": dict(Counter(a["lobe"] for a in cases if a.get("tumour"))),
                "enhancing": sum(1 for a in cases if a.get("enhancing")),
                "foci": {str(k): v for k, v in sorted(Counter(a["foci"] for a in cases if a.get("tumour") and "foci" in a).items())},
                "met": sum(1 for a in cases if a and not violations(a, stratum)),
            }
        )
    return {"strata": rows}


def _spread(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    v = np.asarray(values, dtype=float)
    return {"min": round(float(v.min()), 2), "median": round(float(np.median(v)), 2), "max": round(float(v.max()), 2)}


def summary_lines(manifest_path: Path) -> list[str]:
    """A short text table of the summary (one line per stratum)."""
    summary = cohort_summary(json.loads(Path(manifest_path).read_text()))
    return [] if summary is None else rows_text(summary)


def rows_text(summary: dict[str, Any]) -> list[str]:
    """The summary as text lines: a header, then one line per stratum."""
    lines = ["stratum: written/asked, constraints met; achieved volume (ml) min/median/max, hemispheres, enhancing, foci"]
    for row in summary["strata"]:
        vol = row["volume_ml"]
        shown = f"{vol['min']:g}/{vol['median']:g}/{vol['max']:g}" if vol else "-"
        sides = ", ".join(f"{k} {v}" for k, v in sorted(row["hemisphere"].items())) or "-"
        foci = ", ".join(f"{n} focus x{count}" if n == "1" else f"{n} foci x{count}" for n, count in row.get("foci", {}).items()) or "-"
        lines.append(f"  {row['name']}: {row['written']}/{row['asked']}, met {row['met']}; volume {shown}; {sides}; enhancing {row['enhancing']}; {foci}")
    return lines


def summary_html(summary: dict[str, Any]) -> str:
    """The report's table of the summary (asked against achieved, one row per stratum)."""
    import html

    head = "<tr><th>stratum</th><th>asked</th><th>written</th><th>constraints met</th><th>asked tumour</th><th>volume ml (min/median/max)</th><th>hemisphere</th><th>lobe</th><th>enhancing</th><th>foci (count: cases)</th></tr>"
    rows = []
    for row in summary["strata"]:
        vol = row["volume_ml"]
        cells = [
            row["name"], row["asked"], row["written"], row["met"], json.dumps(row["constraints"]),
            f"{vol['min']:g} / {vol['median']:g} / {vol['max']:g}" if vol else "-",
            ", ".join(f"{k} {v}" for k, v in sorted(row["hemisphere"].items())) or "-",
            ", ".join(f"{k} {v}" for k, v in sorted(row["lobe"].items())) or "-",
            row["enhancing"],
            ", ".join(f"{k}: {v}" for k, v in row.get("foci", {}).items()) or "-",
        ]
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return "<h2>Cohort: asked against achieved</h2><table>" + head + "".join(rows) + "</table>"
