"""Cohorts and progression: cost of a constrained case against an unconstrained one (same run), how well the
constraints and the atrophy prescription are met, and the two README figures.

    python bench/bench_cohort_progress.py --out bench/results [--per-stratum 6] [--shape 48,56,48] [--spacing 4]

Prints ratios against the reference measured in the same command (unconstrained phantom cases on the same
grid); writes cohort_distribution.png and growth_series.png into --out.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import nibabel as nib
import numpy as np
from medsynth_engine.generate import GenerateRequest, generate_set
from medsynth_engine.progression.series import ProgressRequest, run_progress
from medsynth_engine.registry import default_registry


def _cohort(per: int) -> dict:
    return {
        "strata": [
            {"name": "small-left", "count": per, "tumour": {"volume_ml": [5, 20], "hemisphere": "left", "enhancing": False}},
            {"name": "large-right", "count": per, "tumour": {"volume_ml": [60, 120], "hemisphere": "right", "enhancing": True}},
            {"name": "temporal", "count": per, "tumour": {"volume_ml": [20, 60], "lobe": "temporal"}},
        ]
    }


def _cohort_figure(manifest: dict, path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    colours = {"small-left": "tab:green", "large-right": "tab:red", "temporal": "tab:blue"}
    for case in manifest["cases"]:
        a = case["attributes"]
        x, y, _ = a["centroid_mni_mm"]
        axes[0].scatter(x, a["volume_ml"], c=colours[case["stratum"]], marker="o" if a["enhancing"] else "x", label=case["stratum"])
        axes[1].scatter(x, y, c=colours[case["stratum"]], marker="o" if a["enhancing"] else "x")
    handles = {h.get_label(): h for h in axes[0].collections}
    axes[0].legend(handles.values(), handles.keys(), fontsize=8)
    axes[0].axvline(0, color="grey", lw=0.5)
    axes[0].set(xlabel="tumour centroid x, MNI mm (left < 0 < right)", ylabel="whole-tumour volume in the label map (ml)", yscale="log")
    axes[1].set(xlabel="centroid x (mm)", ylabel="centroid y (mm)", title="sites (o enhancing, x not)")
    axes[1].axvline(0, color="grey", lw=0.5)
    for low, high, colour in ((5, 20, "tab:green"), (60, 120, "tab:red"), (20, 60, "tab:blue")):
        axes[0].axhspan(low, high, color=colour, alpha=0.08)
    fig.suptitle("A cohort of three strata: asked ranges (bands) and what each written case realised")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _growth_figure(series: Path, path: Path) -> None:
    manifest = json.loads((series / "manifest.json").read_text())
    points = manifest["time_points"]
    last = np.asarray(nib.load(str(series / points[-1]["files"]["seg"])).dataobj)
    z = int(np.argwhere(last > 0)[:, 2].mean())
    fig, axes = plt.subplots(1, len(points), figsize=(3 * len(points), 3.4))
    for ax, tp in zip(axes, points, strict=True):
        flair = np.asarray(nib.load(str(series / tp["files"]["flair"])).dataobj)[:, :, z].T
        seg = np.asarray(nib.load(str(series / tp["files"]["seg"])).dataobj)[:, :, z].T
        ax.imshow(flair, cmap="gray", origin="lower")
        overlay = np.zeros((*seg.shape, 4))
        for code, colour in ((1, (0, 0.8, 0)), (2, (1, 1, 0)), (4, (1, 0, 0))):
            overlay[seg == code] = (*colour, 0.35)
        ax.imshow(overlay, origin="lower")
        ax.set_title(f"month {tp['month']:g}: {tp['volumes']['whole_ml']:.0f} ml", fontsize=9)
        ax.axis("off")
    fig.suptitle("Fisher-Kolmogorov growth in one case (FLAIR; NCR green, ED yellow, ET red)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--per-stratum", type=int, default=6)
    parser.add_argument("--shape", default="48,56,48")
    parser.add_argument("--spacing", type=float, default=4.0)
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.shape.split(","))
    spacing = (args.spacing,) * 3
    registry = default_registry()
    registry.get("phantom").atlas.get()
    n = 3 * args.per_stratum
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        t0 = time.perf_counter()
        generate_set(GenerateRequest(model="phantom", n=n, seed=1, out=tmp / "plain", shape=shape, spacing=spacing, channels=("t1", "t2", "flair", "seg")), registry)
        plain = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = generate_set(
            GenerateRequest(model="phantom", n=1, seed=1, out=tmp / "cohort", shape=shape, spacing=spacing, channels=("t1", "t2", "flair", "seg"), cohort=_cohort(args.per_stratum)),
            registry,
        )
        cohort = time.perf_counter() - t0
        manifest = json.loads((out / "manifest.json").read_text())
        _cohort_figure(manifest, args.out / "cohort_distribution.png")
        attempts = [c["params"]["cohort_draws"]["attempt"] for c in manifest["cases"]]
        errors = [abs(c["attributes"]["volume_ml"] / c["params"]["cohort_draws"]["volume_target_ml"] - 1) for c in manifest["cases"]]
        print(f"{n} cases {shape} at {args.spacing} mm: unconstrained {plain:.1f} s, cohort {cohort:.1f} s, ratio {cohort / plain:.2f}")
        print(f"redraws: {sum(a > 0 for a in attempts)} of {n}; realised/target volume error: median {np.median(errors):.3%}, max {np.max(errors):.3%}")
        case = out / next(c["id"] for c in manifest["cases"] if c["stratum"] == "large-right")
        t0 = time.perf_counter()
        series = run_progress(ProgressRequest(case=case, model="growth", months=[0, 3, 6, 12], out=tmp / "growth"))
        print(f"growth series (0,3,6,12 months): {time.perf_counter() - t0:.1f} s")
        _growth_figure(series, args.out / "growth_series.png")
        healthy = out / manifest["cases"][0]["id"]
        t0 = time.perf_counter()
        atrophy = run_progress(ProgressRequest(case=healthy, model="atrophy", months=[12, 24], out=tmp / "atrophy"))
        print(f"atrophy series (12, 24 months): {time.perf_counter() - t0:.1f} s")
        for tp in json.loads((atrophy / "manifest.json").read_text())["time_points"]:
            rel = {k: f"{tp['measured_change'][k] / v - 1:+.2%}" for k, v in tp["prescribed_change"].items() if k != "other_csf"}
            print(f"month {tp['month']:g}: measured/prescribed Jacobian change - 1: {rel}")


if __name__ == "__main__":
    main()
