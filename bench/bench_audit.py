"""Benchmark: how the memorisation audit's time grows with the number of training cases, at 64^3 and 128^3.

For each size, 4 synthetic cases are audited against training sets of T cases (4 channels, int16, BraTS
layout, 240 mm field of view). Training cases are written once per size from 3 phantom subjects with
distinct noise and shifts (rendering 100+ phantoms at 128^3 would take longer than the audit; the audit's
cost does not depend on what the volumes show). Reference, measured in the same run: the time just to
read and decompress the same training files (the I/O floor any streaming audit pays). Prints seconds,
seconds per training case, and ratios against the smallest T and against the read-only floor.

Usage: python bench/bench_audit.py [--sizes 64,128] [--counts 8,16,32,64]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from medsynth_engine.evaluate.audit import run_audit
from medsynth_engine.nifti_io import read_nifti, write_nifti
from medsynth_engine.registry import default_registry

CHANNELS = ("t1", "t1ce", "t2", "flair")


def _write_case(folder: Path, name: str, arrays: dict[str, np.ndarray], affine: np.ndarray) -> None:
    (folder / name).mkdir(parents=True)
    for channel, array in arrays.items():
        write_nifti(folder / name / f"{name}_{channel}.nii.gz", array, affine)


def _sets(root: Path, size: int, count: int) -> tuple[Path, Path]:
    plugin = default_registry().get("phantom")
    spacing = (240.0 / size,) * 3
    subjects = [plugin.generate(seed=s, channels=CHANNELS, shape=(size,) * 3, spacing=spacing, tumour=True, device="cpu") for s in range(7)]
    synthetic, train = root / f"syn{size}", root / f"train{size}"
    for i, case in enumerate(subjects[:4]):
        _write_case(synthetic, f"syn{i:03d}", case.arrays, case.affine)
    rng = np.random.default_rng(0)
    for i in range(count):
        base = subjects[4 + i % 3]
        shift = tuple(int(s) for s in rng.integers(-3, 4, size=3))
        arrays = {
            c: np.roll(a + rng.normal(0, 20, a.shape), shift, axis=(0, 1, 2)).astype(np.int16) for c, a in base.arrays.items()
        }
        _write_case(train, f"train{i:03d}", arrays, base.affine)
    return synthetic, train


def _read_all(train: Path, count: int) -> float:
    start = time.perf_counter()
    for case in sorted(train.iterdir())[:count]:
        for path in sorted(case.iterdir()):
            read_nifti(path)
    return time.perf_counter() - start


def _subset(train: Path, count: int, root: Path) -> Path:
    folder = root / f"{train.name}-{count}"
    folder.mkdir()
    for case in sorted(train.iterdir())[:count]:
        os.symlink(case, folder / case.name)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="64,128")
    parser.add_argument("--counts", default="8,16,32,64")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    counts = [int(c) for c in args.counts.split(",")]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU(s), torch threads {torch.get_num_threads()}, no GPU used")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for size in sizes:
            synthetic, train = _sets(root, size, max(counts))
            print(f"\n{size}^3, 4 synthetic cases, 4 channels")
            print(f"{'T':>5} {'audit s':>9} {'s/case':>8} {'vs T0':>7} {'read s':>8} {'audit/read':>10}")
            first = None
            for count in counts:
                subset = _subset(train, count, root)
                read = _read_all(subset, count)
                start = time.perf_counter()
                run_audit(synthetic, subset)
                seconds = time.perf_counter() - start
                first = first or seconds
                print(f"{count:>5} {seconds:>9.2f} {seconds / count:>8.3f} {seconds / first:>7.2f} {read:>8.2f} {seconds / read:>10.2f}")


if __name__ == "__main__":
    main()
