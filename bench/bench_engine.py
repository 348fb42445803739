"""Benchmark: what a running engine saves. Measured in the same run, on the same case:

  start-to-ready: ``EngineProcess.start`` until ``GET /health`` answers (the launcher's wait);
  cold:  ``medsynth generate`` as a fresh process (interpreter, torch, model load, atlas, render, write);
  warm:  the same case as a ``generate`` job on an engine that has already run one job (models and atlas
         loaded), timed from ``POST /jobs`` until the job reads ``succeeded`` (client polls every 50 ms).
Prints seconds (median of the repeats, cold and warm runs interleaved) and the cold/warm ratio per grid size.

Usage: python bench/bench_engine.py [--sizes 32,96,full] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from MedSynthLib.launcher import EngineProcess

CHANNELS = "t1,t1ce,t2,flair,seg"


def _case(size: str) -> dict:
    """A cube of ``size`` voxels over 192 mm, or ``full``: the phantom's own 176 x 208 x 176 grid at 1 mm."""
    case = {"model": "phantom", "n": 1, "seed": 11, "channels": CHANNELS}
    if size != "full":
        case.update(shape=int(size), spacing=round(192.0 / int(size), 3))
    return case


def _cold(case: dict, out: Path) -> float:
    command = [sys.executable, "-m", "medsynth_engine.cli", "generate", "--quiet", "--device", "cpu", "--out", str(out)]
    command += ["--model", case["model"], "-n", str(case["n"]), "--seed", str(case["seed"]), "--channels", case["channels"]]
    if "shape" in case:
        command += ["--shape", str(case["shape"]), "--spacing", str(case["spacing"])]
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - start


def _warm(client, case: dict, out: Path) -> tuple[float, float]:
    start = time.perf_counter()
    job = client.submit("generate", {**case, "out": str(out)})
    job = client.wait(job["id"], poll=0.05, timeout=900)
    total = time.perf_counter() - start
    if job["state"] != "succeeded":
        raise SystemExit(f"warm job failed: {job['error']}")
    return total, float(job["metrics"].get("seconds", 0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="32,96,full", help="cube sides to time, or full (default 32,96,full)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, device cpu")
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        root = Path(tmp)
        starts = []
        for i in range(args.repeats):
            begin = time.perf_counter()
            engine = EngineProcess.start(sys.executable, state_dir=root / f"state-{i}", device="cpu", extra_args=["--allow-dir", tmp])
            engine.client().health()
            starts.append(time.perf_counter() - begin)
            engine.stop()
        print(f"engine start-to-ready: median {statistics.median(starts):.2f} s over {args.repeats} starts {[round(s, 2) for s in starts]}")
        engine = EngineProcess.start(sys.executable, state_dir=root / "state", device="cpu", extra_args=["--allow-dir", tmp])
        client = engine.client(timeout=60)
        try:
            _warm(client, _case(sizes[0]), root / "warm-up")
            print(f"{'grid':>11} {'cold CLI (s)':>13} {'warm job (s)':>13} {'in-engine (s)':>14} {'cold/warm':>10}")
            for size in sizes:
                case = _case(size)
                cold, warm = [], []
                for i in range(args.repeats):  # interleaved, so both see the same background load
                    cold.append(_cold(case, root / f"cold-{size}-{i}"))
                    warm.append(_warm(client, case, root / f"warm-{size}-{i}"))
                cold_s = statistics.median(cold)
                warm_s = statistics.median(w[0] for w in warm)
                inside = statistics.median(w[1] for w in warm)
                label = "176x208x176" if size == "full" else f"{size}^3"
                print(f"{label:>11} {cold_s:>13.2f} {warm_s:>13.2f} {inside:>14.2f} {cold_s / warm_s:>9.1f}x")
        finally:
            engine.stop()


if __name__ == "__main__":
    main()
