"""Benchmark: generating-and-exporting cost of the writer, against plain sequential ``nibabel.save``.

Writes N cases of 5 channels (t1, t1ce, t2, flair, seg) at 128^3 as .nii.gz two ways, in the same run:
  reference: ``nibabel.save(Nifti1Image(array, affine), path)`` one file after another (zlib gzip);
  medsynth:  ``SetWriter`` (anonymised headers, ISA-L igzip level 1, two writer threads, temp + rename).
Also a single-thread medsynth run, to separate the codec's gain from the threads'. The arrays are real
phantom volumes (int16 MR, uint8 labels), rendered once before timing. Prints seconds and ratios.

Usage: python bench/bench_export.py [--cases 8] [--size 128]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import nibabel as nib
from medsynth_engine.registry import SynthCase, default_registry
from medsynth_engine.setwriter import SetWriter

CHANNELS = ("t1", "t1ce", "t2", "flair", "seg")


def _cases(n: int, size: int) -> list[SynthCase]:
    plugin = default_registry().get("phantom")
    spacing = (160.0 / size,) * 3
    return [plugin.generate(seed=i, channels=CHANNELS, shape=(size,) * 3, spacing=spacing, tumour=True, device="cpu") for i in range(min(n, 2))]


def _plain(cases: list[SynthCase], n: int, root: Path) -> float:
    start = time.perf_counter()
    for i in range(n):
        case = cases[i % len(cases)]
        folder = root / f"case{i}"
        folder.mkdir()
        for channel in CHANNELS:
            nib.save(nib.Nifti1Image(case.arrays[channel], case.affine), str(folder / f"case{i}_{channel}.nii.gz"))
    return time.perf_counter() - start


def _medsynth(cases: list[SynthCase], n: int, root: Path, workers: int) -> float:
    start = time.perf_counter()
    with SetWriter(root / "set", "brats", CHANNELS, workers=workers) as writer:
        for i in range(n):
            writer.add(cases[i % len(cases)], seed=i, index=i)
        writer.commit({"benchmark": True})
    return time.perf_counter() - start


def _size_mb(root: Path) -> float:
    return sum(p.stat().st_size for p in root.rglob("*.nii.gz")) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=8)
    parser.add_argument("--size", type=int, default=128)
    args = parser.parse_args()
    start = time.perf_counter()
    cases = _cases(args.cases, args.size)
    render_s = (time.perf_counter() - start) / len(cases)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU(s), python {platform.python_version()}")
    print(f"{args.cases} cases x {len(CHANNELS)} channels at {args.size}^3")
    results = {}
    for name, run in [
        ("nibabel.save, sequential (reference)", lambda r: _plain(cases, args.cases, r)),
        ("medsynth SetWriter, 1 thread", lambda r: _medsynth(cases, args.cases, r, 1)),
        ("medsynth SetWriter, 2 threads", lambda r: _medsynth(cases, args.cases, r, 2)),
    ]:
        root = Path(tempfile.mkdtemp(prefix="medsynth-bench-"))
        try:
            seconds = run(root)
            results[name] = (seconds, _size_mb(root))
        finally:
            shutil.rmtree(root)
    reference = results["nibabel.save, sequential (reference)"][0]
    print(f"phantom render, for context: {render_s:.2f} s per case (first includes loading the atlas)")
    for name, (seconds, mb) in results.items():
        print(f"{name:<40} {seconds:7.2f} s  {args.cases / seconds:6.2f} cases/s  {mb:7.1f} MB  speed-up x{reference / seconds:.2f}")


if __name__ == "__main__":
    main()
