"""What resuming costs: an uninterrupted run against one stopped halfway and resumed, and the verification alone.

Three runs of the same arguments, in-process, with the phantom warm:
  reference: ``generate_set`` start to finish.
  stopped at n/2 and resumed: the two calls together (the resume re-reads and checks the first half's files).
  verification only: the resume of a run stopped after its last case (checks every file, makes nothing, publishes).
Every run's files are compared with the reference's (SHA-256); the ratios are against the reference's time.

  python bench/bench_resume.py --cases 8 --shape 64 --spacing 3
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from medsynth_engine.generate import GenerateRequest, generate_set
from medsynth_engine.registry import default_registry


def _checksums(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def _stopped_then_resumed(request: GenerateRequest, registry, stop_at: int) -> tuple[float, float]:
    """Seconds for both calls together, and for the resuming call alone."""

    def stop(done: int, total: int) -> None:
        if done == stop_at:
            raise KeyboardInterrupt

    start = time.perf_counter()
    try:
        generate_set(request, registry, progress=stop)
    except KeyboardInterrupt:
        pass
    resumed = time.perf_counter()
    generate_set(replace(request, resume=True), registry)
    end = time.perf_counter()
    return end - start, end - resumed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--shape", type=int, default=64)
    parser.add_argument("--spacing", type=float, default=3.0)
    args = parser.parse_args()
    registry = default_registry()
    root = Path(tempfile.mkdtemp(prefix="medsynth-bench-resume-"))
    try:
        base = GenerateRequest(model="phantom", n=args.cases, seed=1, out=root / "warm", shape=(args.shape,) * 3,
                               spacing=(args.spacing,) * 3, device="cpu")
        generate_set(replace(base, n=1), registry)  # loads the atlas
        start = time.perf_counter()
        reference = _checksums(generate_set(replace(base, out=root / "reference"), registry))
        reference_s = time.perf_counter() - start
        half_s, _ = _stopped_then_resumed(replace(base, out=root / "half"), registry, args.cases // 2)
        _, verify_s = _stopped_then_resumed(replace(base, out=root / "all"), registry, args.cases)
        assert _checksums(root / "half") == reference and _checksums(root / "all") == reference
        files_mb = sum(p.stat().st_size for p in (root / "reference").rglob("*.nii.gz")) / 1e6
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPU(s), python {platform.python_version()}")
        print(f"{args.cases} cases x 5 channels at {args.shape}^3, {args.spacing} mm ({files_mb:.1f} MB of NIfTI); files identical in all runs")
        print(f"{'reference: uninterrupted':<44} {reference_s:7.2f} s  x1.00")
        print(f"{'stopped at n/2, then resumed (both calls)':<44} {half_s:7.2f} s  x{half_s / reference_s:.2f}")
        print(f"{'resume of a run stopped after its last case':<44} {verify_s:7.2f} s  x{verify_s / reference_s:.2f}"
              "  (verifies every file, makes nothing, publishes)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
