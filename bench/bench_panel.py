"""Benchmark: what the panel costs the GUI thread, against references measured in the same run.

1. Loading a generated case into MRML (``MedSynthLib.scene.load_case``: SimpleITK read, nodes and BraTS
   segments made from the arrays; the panel runs the read on a worker and the rest in timer ticks) against plain ``nibabel`` reading of the same files into numpy (the floor for any loader).
2. One QTimer tick while a job runs (``PanelController.poll``: one GET /jobs/{id}) against the 500 ms tick
   interval, i.e. the share of the GUI thread spent polling, and against ``GET /health`` (the HTTP floor).

Usage: python bench/bench_panel.py [--size 176,208,176] [--polls 50]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np


def best_of(runs: int, action) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="176,208,176", help="case shape X,Y,Z (1 mm)")
    parser.add_argument("--polls", type=int, default=50)
    args = parser.parse_args()
    shape = tuple(int(v) for v in args.size.split(","))

    import slicer
    from medsynth_engine.generate import GenerateRequest, generate_set
    from medsynth_engine.registry import default_registry

    from MedSynthLib.controller import PanelController, first_case_dir
    from MedSynthLib.scene import case_channel_files, load_case

    with tempfile.TemporaryDirectory() as tmp:
        out = generate_set(GenerateRequest(model="phantom", n=1, seed=1, out=Path(tmp) / "set", shape=shape,
                                           spacing=(1.0, 1.0, 1.0), device="cpu"), default_registry())
        case = first_case_dir(out)
        files = case_channel_files(case)
        reference = best_of(3, lambda: [np.asanyarray(nib.load(str(p)).dataobj) for p in files.values()])
        mrml = best_of(3, lambda: load_case(case, slicer.vtkMRMLScene()))
        print(f"machine: {platform.processor() or platform.machine()}, python {sys.version.split()[0]}")
        print(f"load case {shape} x {len(files)} channels: nibabel {reference:.3f} s, load_case {mrml:.3f} s, "
              f"ratio {mrml / reference:.2f}x")

        controller = PanelController()
        controller.start_engine(sys.executable, str(Path(tmp) / "engine"), device="cpu")
        try:
            controller.generate(model="phantom", count=200, seed=0, channels="t1", tumour=False, shape=48)
            client = controller.session.client
            health, ticks = [], []
            for _ in range(args.polls):
                start = time.perf_counter()
                client.health()
                health.append(time.perf_counter() - start)
                start = time.perf_counter()
                controller.poll()
                ticks.append(time.perf_counter() - start)
            controller.cancel()
        finally:
            controller.stop_engine(force=True)
        tick, floor = statistics.median(ticks), statistics.median(health)
        print(f"poll while a job runs: median {tick * 1000:.1f} ms (max {max(ticks) * 1000:.1f} ms) = "
              f"{tick / 0.5 * 100:.2f}% of a 500 ms tick; GET /health {floor * 1000:.1f} ms, ratio {tick / floor:.2f}x")


if __name__ == "__main__":
    main()
