"""Cohorts and progression: cost of a constrained case against an unconstrained one (same run), how well the
constraints and the atrophy prescription are met, and the two README figures.

    python bench/bench_cohort_progress.py --out bench/results [--per-stratum 6] [--shape 48,56,48] [--spacing 4]
    python bench/bench_cohort_progress.py --out bench/results --parts growth   # only the growth figure (about a minute)

Prints ratios against the reference measured in the same command (unconstrained phantom cases on the same
grid); writes cohort_distribution.png and growth_series.png into --out. The growth series grows a small enhancing
tumour in deep left white matter on its own grid (--growth-shape, --growth-spacing: 2 mm by default, where the
front-speed measurement has enough voxels) and writes growth_series.md beside the figure: per time point the
tumour volume and the visible front's median speed in white and in grey matter and their ratio, as the series
manifest records them.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
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


GROWTH_COHORT = {"strata": [{"name": "deep-left", "count": 1, "tumour": {"volume_ml": [4, 10], "enhancing": True, "centre_mm": [-26, -12, 20], "radius_mm": 12}}]}


def _growth(registry, tmp: Path, shape: tuple, spacing: tuple, months: list[float], out: Path, command: str) -> None:
    """The growth figure and its front-speed table, on a case of its own (a small deep white-matter tumour)."""
    made = generate_set(
        GenerateRequest(model="phantom", n=1, seed=11, out=tmp / "growth-case", shape=shape, spacing=spacing, channels=("t1", "t2", "flair", "seg"), cohort=GROWTH_COHORT),
        registry,
    )
    case = made / json.loads((made / "manifest.json").read_text())["cases"][0]["id"]
    t0 = time.perf_counter()
    series = run_progress(ProgressRequest(case=case, model="growth", months=months, out=tmp / "growth"))
    seconds = time.perf_counter() - t0
    print(f"growth series (months {','.join(f'{m:g}' for m in months)}): {seconds:.1f} s")
    _growth_figure(series, out / "growth_series.png")
    manifest = json.loads((series / "manifest.json").read_text())
    lines = [
        "# Growth series (bench/bench_cohort_progress.py): the README's growth_series.png and its front speeds",
        "",
        "Command (wall time on the shared, loaded 2-core VM, CPU only):",
        "",
        f"    {command}",
        "",
        f"Case: phantom, seed 11, {'x'.join(map(str, shape))} at {spacing[0]:g} mm, one enhancing tumour of 4-10 ml drawn near MNI (-26, -12, 20)"
        f" (deep left white matter); growth with the defaults ({', '.join(f'{k} {v}' for k, v in manifest['parameters']['growth'].items() if v is not None)});"
        f" series in {seconds:.1f} s.",
        "",
        "Front speed: median over the voxels the visible edge (c >= 0.16) crossed up to that month of 1 / |grad arrival day|"
        " (progression/frontspeed.py); None where fewer than 20 voxels of a tissue were crossed.",
        "",
        "| month | whole tumour (ml) | white (mm/day) | grey (mm/day) | white / grey | voxels white, grey |",
        "|---|---|---|---|---|---|",
    ]
    for tp in manifest["time_points"]:
        front = tp["front_speed"]
        lines.append(
            f"| {tp['month']:g} | {tp['volumes']['whole_ml']:.1f} | {front['white_mm_per_day']} | {front['grey_mm_per_day']} | "
            f"**{front['white_grey_ratio']}** | {front['white_voxels']}, {front['grey_voxels']} |"
        )
        print(f"month {tp['month']:g}: {tp['volumes']['whole_ml']:.1f} ml, front speed white/grey {front['white_grey_ratio']} ({front})")
    (out / "growth_series.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench/results"))
    parser.add_argument("--parts", default="cohort,growth,atrophy", help="any of cohort, growth, atrophy, comma-separated")
    parser.add_argument("--per-stratum", type=int, default=6)
    parser.add_argument("--shape", default="48,56,48")
    parser.add_argument("--spacing", type=float, default=4.0)
    parser.add_argument("--growth-shape", default="88,104,88")
    parser.add_argument("--growth-spacing", type=float, default=2.0)
    parser.add_argument("--months", default="0,3,6,12", help="the growth series' time points")
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts or parts - {"cohort", "growth", "atrophy"}:
        parser.error("--parts takes cohort, growth and atrophy, comma-separated")
    shape = tuple(int(v) for v in args.shape.split(","))
    spacing = (args.spacing,) * 3
    registry = default_registry()
    registry.get("phantom").atlas.get()
    n = 3 * args.per_stratum
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if "growth" in parts:
            threads = f"OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']} " if "OMP_NUM_THREADS" in os.environ else ""
            command = f"{threads}PYTHONPATH=engine:. nice -n 15 python bench/bench_cohort_progress.py " + " ".join(sys.argv[1:])
            growth_shape = tuple(int(v) for v in args.growth_shape.split(","))
            months = [float(m) for m in args.months.split(",")]
            _growth(registry, tmp, growth_shape, (args.growth_spacing,) * 3, months, args.out, command)
        if "cohort" in parts:
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
        if "atrophy" in parts:
            healthy_set = generate_set(
                GenerateRequest(model="phantom", n=1, seed=1, out=tmp / "healthy", shape=shape, spacing=spacing, channels=("t1", "t2", "flair", "seg"), tumour=False),
                registry,
            )
            healthy = healthy_set / json.loads((healthy_set / "manifest.json").read_text())["cases"][0]["id"]
            t0 = time.perf_counter()
            atrophy = run_progress(ProgressRequest(case=healthy, model="atrophy", months=[12, 24], out=tmp / "atrophy"))
            print(f"atrophy series (12, 24 months): {time.perf_counter() - t0:.1f} s")
            for tp in json.loads((atrophy / "manifest.json").read_text())["time_points"]:
                rel = {k: f"{tp['measured_change'][k] / v - 1:+.2%}" for k, v in tp["prescribed_change"].items() if k != "other_csf"}
                print(f"month {tp['month']:g}: measured/prescribed Jacobian change - 1: {rel}")


if __name__ == "__main__":
    main()
