"""Where two sets' MS-SSIM differ: per sequence, per scale, and the coarsest scale's luminance and contrast-structure.

``medsynth evaluate`` reports one mean pairwise MS-SSIM per set (MONAI's MultiScaleSSIMMetric, averaged over the
sequences). To see which sequence and which scale make a gap, this recomputes the same metric (the setting of
``evaluate.diversity.ms_ssim_setting``) with a separable Gaussian and keeps its parts; the first pair is checked
against MONAI's value. Both sets are brought onto the validity benchmark's 64^3 / 3 mm grid. The parts are plain
means over pairs (a luminance below 0 means the two brains' levels lie on either side of the range's middle); the
MS-SSIM columns clamp at 0 as MONAI does.

    nice -n 15 python bench/ms_ssim_breakdown.py REAL_SET SYNTHETIC_SET --cases 24
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from bench_validity import CHANNELS, GRID, SPACING
from medsynth_engine.data.preprocess import PreprocessSpec, preprocess_case
from medsynth_engine.evaluate.diversity import mean_pairwise_ms_ssim, ms_ssim_setting
from medsynth_engine.evaluate.sets import iter_cases, open_set

SETTING = ms_ssim_setting((GRID,) * 3)
WEIGHTS = np.asarray(SETTING["weights"])
_C1, _C2 = (0.01 * SETTING["data_range"]) ** 2, (0.03 * SETTING["data_range"]) ** 2


def _kernel() -> torch.Tensor:
    k, sigma = SETTING["kernel_size"], SETTING["kernel_sigma"]
    x = torch.arange(k, dtype=torch.float32) - (k - 1) / 2
    g = torch.exp(-((x / sigma) ** 2) / 2)
    return g / g.sum()


_G = _kernel()


def _blur(x: torch.Tensor) -> torch.Tensor:
    """(N, X, Y, Z) -> the valid Gaussian filter, one axis at a time (MONAI's 3D kernel is their product)."""
    k = len(_G)
    y = x[:, None]
    for shape in ((k, 1, 1), (1, k, 1), (1, 1, k)):
        y = F.conv3d(y, _G.view(1, 1, *shape))
    return y[:, 0]


def pair_parts(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(C, 5) per sequence: contrast-structure at scales 1 and 2, SSIM at scale 3, and its luminance and contrast-structure."""
    x, y = torch.from_numpy(a).float(), torch.from_numpy(b).float()
    out = np.zeros((len(a), 5))
    for scale in range(len(WEIGHTS)):
        mx, my = _blur(x), _blur(y)
        sx, sy, sxy = _blur(x * x) - mx * mx, _blur(y * y) - my * my, _blur(x * y) - mx * my
        cs = (2 * sxy + _C2) / (sx + sy + _C2)
        if scale < len(WEIGHTS) - 1:
            out[:, scale] = cs.flatten(1).mean(1).numpy()
            x, y = F.avg_pool3d(x[:, None], 2)[:, 0], F.avg_pool3d(y[:, None], 2)[:, 0]
        else:
            luminance = (2 * mx * my + _C1) / (mx * mx + my * my + _C1)
            out[:, 2:] = torch.stack([(luminance * cs).flatten(1).mean(1), luminance.flatten(1).mean(1), cs.flatten(1).mean(1)], 1).numpy()
    return out


def breakdown(volumes: np.ndarray) -> dict:
    """Mean over all pairs: the pooled MS-SSIM (channels averaged within each scale, as MONAI), per sequence, per part."""
    parts = np.stack([pair_parts(volumes[i], volumes[j]) for i, j in itertools.combinations(range(len(volumes)), 2)])
    scales = parts[:, :, :3]
    pooled = np.prod(np.clip(scales.mean(1), 0, None) ** WEIGHTS, axis=1)
    per_sequence = np.prod(np.clip(scales, 0, None) ** WEIGHTS, axis=2)
    return {"pooled": float(pooled.mean()), "per_sequence": per_sequence.mean(0), "parts": parts.mean(0), "first_pair": float(pooled[0])}


def first_cases(folder: Path, n: int) -> np.ndarray:
    """The first ``n`` cases of a set as (N, C, 64, 64, 64) in [-1, 1], preprocessed as the benchmark's TSTR arrays."""
    spec = PreprocessSpec(shape=(GRID,) * 3, spacing=(SPACING,) * 3)
    volumes = []
    for _, case in iter_cases(open_set(folder, "set"), CHANNELS):
        out, _ = preprocess_case(case.arrays, case.affine, spec)
        volumes.append(np.stack([out[c] for c in CHANNELS]).astype(np.float32))
        if len(volumes) == n:
            break
    return np.stack(volumes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sets", type=Path, nargs="+", help="set folders (BraTS layout with seg), compared column by column")
    parser.add_argument("--cases", type=int, default=24, help="the first N cases of each set (default 24)")
    args = parser.parse_args()
    results = {}
    for folder in args.sets:
        volumes = first_cases(folder, args.cases)
        results[folder.name] = breakdown(volumes)
        monai = mean_pairwise_ms_ssim(list(volumes[:2]))
        print(f"{folder.name}: pooled MS-SSIM {results[folder.name]['pooled']:.3f} over {len(volumes)} cases "
              f"(first pair {results[folder.name]['first_pair']:.4f}, MONAI {monai:.4f})")
    names = " / ".join(results)
    print(f"| sequence | MS-SSIM | scale 1 cs | scale 2 cs | scale 3 SSIM | scale 3 luminance | scale 3 cs |  ({names})\n|" + "---|" * 7)
    for c, channel in enumerate(CHANNELS):
        cells = [" / ".join(f"{r['per_sequence'][c]:.3f}" for r in results.values())]
        cells += [" / ".join(f"{r['parts'][c, p]:.3f}" for r in results.values()) for p in range(5)]
        print(f"| {channel} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
