"""prepare speed: one 4-sequence study end to end on the default path (atlas MNI152, 1 mm, skull strip auto), per step.

The study is a synthetic PACS export of one phantom subject (``medsynth_engine.phantom.dicom_study``) written at
clinical resolutions: T1ce 1 mm isotropic axial (the reference), T1 1 mm sagittal, T2 0.9 x 0.9 x 3 mm with a
smaller field of view, FLAIR 1 x 1 x 4 mm oblique, each after its own head motion, plus a localizer, a derived
reformat and a series with a missing slice. Building it is not timed. The reference measure in the same run is
reading the four series alone (the I/O floor every pipeline pays); the table gives each step and the total as
seconds and as a multiple of that floor, and the total against the 2-minute target.

``--skull-strip auto`` (the command's default) is deepbet's network where it is installed (make setup does it).

    .venv/bin/python bench/bench_prepare.py [--threads N] [--spacing MM] [--skull-strip auto|model|atlas] [--n4] [--qc-png FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "engine"))
sys.path.insert(0, str(ROOT))

TARGET_S = 120.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--spacing", type=float, default=1.0)
    parser.add_argument("--skull-strip", default="auto", choices=("auto", "model", "atlas"))
    parser.add_argument("--n4", action="store_true")
    parser.add_argument("--qc-png", type=Path, default=None, help="copy the case's QC mosaic here")
    args = parser.parse_args()
    load_at_start = os.getloadavg()
    os.environ["SITK_NUMBER_OF_THREADS"] = str(args.threads)
    import SimpleITK as sitk
    import torch
    from medsynth_engine.phantom.dicom_study import DEFAULT_SERIES, SeriesSpec, render_subject, write_study
    from medsynth_engine.prepare import PrepareRequest, prepare
    from medsynth_engine.prepare.sources import find_studies

    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(args.threads)
    torch.set_num_threads(args.threads)
    clinical = {
        "AX T1 3D SPGR POST GD": {"spacing": (1.0, 1.0, 1.0)},
        "T1 3D SAG": {"spacing": (1.0, 1.0, 1.0)},
        "t2_tse_tra": {"spacing": (0.9, 0.9, 3.0)},
        "AX FLAIR oblique": {"spacing": (1.0, 1.0, 4.0)},
    }
    series = tuple(SeriesSpec(**{**spec.__dict__, **clinical.get(spec.description, {})}) for spec in DEFAULT_SERIES)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.monotonic()
        write_study(tmp / "export", render_subject(seed=3, spacing=2.0), series)
        print(f"study built in {time.monotonic() - started:.0f} s (not timed below)", file=sys.stderr)
        started = time.monotonic()
        studies, _ = find_studies(tmp / "export", {})
        scan = time.monotonic() - started
        started = time.monotonic()
        for volume in studies[0].volumes.values():
            volume.load()
        floor = time.monotonic() - started
        started, cpu = time.monotonic(), time.process_time()
        result = prepare(PrepareRequest(input=tmp / "export", out=tmp / "out", skull_strip=args.skull_strip, n4=args.n4,
                                        spacing_mm=args.spacing, skip_bad=True, log=lambda message: None))
        total, cpu = time.monotonic() - started, time.process_time() - cpu
        info = json.loads((Path(result["output_dir"]) / "prepare.json").read_text())["cases"][0]
        if args.qc_png:
            shutil.copy(Path(result["output_dir"]) / info["id"] / f"{info['id']}_qc.png", args.qc_png)
    steps = dict(info["step_seconds"])
    steps["write + QC"] = info["seconds"] - sum(steps.values())
    steps["scan headers (all series)"] = total - info["seconds"]
    print(f"\nprepare, one 4-sequence study, {args.spacing} mm output, skull strip {args.skull_strip} ({info['skull_strip']})"
          f"{', N4' if args.n4 else ''}; "
          f"{args.threads} threads; {platform.processor() or platform.machine()}, {os.cpu_count()} cores; load average "
          + " ".join(f"{v:.1f}" for v in load_at_start) + " at the start, " + " ".join(f"{v:.1f}" for v in os.getloadavg()) + " at the end")
    print(f"reference (reading the four series): {floor:.1f} s; header scan alone: {scan:.1f} s\n")
    print("| step | seconds | x reading |\n|---|---|---|")
    for name, seconds in steps.items():
        print(f"| {name} | {seconds:.1f} | {seconds / floor:.1f} |")
    print(f"| **total** | **{total:.1f}** | **{total / floor:.1f}** |")
    print(f"\nCPU time of the process (all threads): {cpu:.1f} s (wall time above includes waiting for a loaded CPU)")
    print(f"\ntotal / 2-minute target: {total / TARGET_S:.2f}; atlas scales {info['atlas']['scales']}, mask {info['mask_ml']:.0f} ml, flags {info['flags']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
