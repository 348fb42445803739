"""A pool of phantom anatomies (tissue fractions, tumour labels) for domain-randomised channel-model training.

Domain randomisation (SynthSeg, SynthSR) trains on images whose contrast and acquisition are drawn anew at
every step, so only anatomy and labels have to be stored: each pool subject is the phantom's partial-volume
fractions of its ten tissues plus its brain mask, and its BraTS labels, on the channel models' 2 mm grid.
``randomise`` paints intensities on them. Healthy subjects (no tumour) are part of every pool, so that every
training batch holds one.

A pool is a folder: ``pool.json`` (what it holds, the subject parameters) and ``pool.safetensors``
(fractions as uint8 0-255, labels as uint8 BraTS codes). ``medsynth finetune --data <pool folder>`` trains
on it with randomisation; ``python -m medsynth_engine.models.channelnet.tissuepool --out DIR`` writes one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ...errors import MedSynthError
from ...phantom import AtlasLoader, Grid, draw_subject, render
from ...phantom.tissues import TISSUES

__all__ = ["POOL_FILE", "TissuePool", "is_pool", "build_pool", "merge_pools", "load_pool", "main"]

POOL_FILE = "pool.json"
TENSOR_FILE = "pool.safetensors"
#: Grid of the pool: the channel models' spacing and a whole adult head with its skull (fitting.FOV_MM).
POOL_SHAPE = (96, 112, 96)
POOL_SPACING = 2.0
#: Seeds of pool subjects start here, away from the seeds ``medsynth generate`` users and evaluations pick.
SEED_BASE = 7_000_000
#: One atlas per process, loaded on first use (it takes seconds).
_ATLAS = AtlasLoader()


@dataclass
class TissuePool:
    """Subjects on one grid: fractions (N, T+1, X, Y, Z) uint8 (last channel: brain), labels (N, X, Y, Z) uint8."""

    fractions: torch.Tensor
    labels: torch.Tensor
    healthy: torch.Tensor  # bool (N,)
    spacing: float
    description: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def is_pool(folder: Path) -> bool:
    """Whether ``folder`` is a tissue pool rather than a folder of cases."""
    return (Path(folder) / POOL_FILE).is_file()


def build_pool(
    out: Path,
    tumour_cases: int,
    healthy_cases: int,
    *,
    seed: int = SEED_BASE,
    shape: tuple[int, int, int] = POOL_SHAPE,
    spacing: float = POOL_SPACING,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Render ``tumour_cases`` + ``healthy_cases`` phantom subjects' anatomy into a pool folder (atomically)."""
    if tumour_cases < 1 or healthy_cases < 1:
        raise MedSynthError("A tissue pool needs at least one subject with a tumour and one without.")
    atlas = _ATLAS.get()
    fractions, labels, subjects = [], [], []
    total = tumour_cases + healthy_cases
    for i in range(total):
        params = draw_subject(seed + i, atlas, tumour=i < tumour_cases)
        grid = Grid.centred(shape, (spacing,) * 3, atlas.brain_centre_mm + np.asarray(params.translation_mm))
        arrays = render(params, atlas, grid, ("seg", "tissues"), skull_strip=False, supersample=False)
        fractions.append(torch.from_numpy(np.rint(np.clip(arrays["tissues"], 0.0, 1.0) * 255.0).astype(np.uint8)))
        labels.append(torch.from_numpy(arrays["seg"]))
        subjects.append(params.to_dict())
        if progress:
            progress(i + 1, total)
    return _write(Path(out), torch.stack(fractions), torch.stack(labels), subjects, spacing)


def merge_pools(parts: list[Path], out: Path) -> Path:
    """One pool from several (built in parallel processes); they must share grid and spacing."""
    metas = [json.loads((Path(p) / POOL_FILE).read_text()) for p in parts]
    if len({(tuple(m["shape"]), m["spacing"]) for m in metas}) != 1:
        raise MedSynthError("The tissue pools to merge differ in grid or spacing.")
    tensors = [load_file(str(Path(p) / TENSOR_FILE)) for p in parts]
    subjects = [s for m in metas for s in m["subjects"]]
    fractions = torch.cat([t["fractions"] for t in tensors])
    labels = torch.cat([t["labels"] for t in tensors])
    return _write(Path(out), fractions, labels, subjects, float(metas[0]["spacing"]))


def _write(out: Path, fractions: torch.Tensor, labels: torch.Tensor, subjects: list[dict], spacing: float) -> Path:
    """The pool folder, tensors first and ``pool.json`` last, each under a temporary name then renamed."""
    out.mkdir(parents=True, exist_ok=True)
    healthy = sum(s.get("tumour") is None for s in subjects)
    seeds = sorted(s["seed"] for s in subjects)
    meta = {
        "format": "medsynth tissue pool 1",
        "tissues": [t.name for t in TISSUES] + ["brain"],
        "shape": list(labels.shape[1:]),
        "spacing": spacing,
        "tumour_cases": len(subjects) - healthy,
        "healthy_cases": healthy,
        "description": f"{len(subjects) - healthy} phantom subjects with a tumour and {healthy} without (draw_subject seeds "
        f"{seeds[0]}-{seeds[-1]}), tissue fractions at {spacing:g} mm (voxel centres)",
        "subjects": subjects,
    }
    tmp = out / f".{TENSOR_FILE}.{os.getpid()}.partial"
    save_file({"fractions": fractions.contiguous(), "labels": labels.contiguous()}, str(tmp))
    os.replace(tmp, out / TENSOR_FILE)
    tmp_meta = out / f".{POOL_FILE}.{os.getpid()}.partial"
    tmp_meta.write_text(json.dumps(meta, indent=1) + "\n")
    os.replace(tmp_meta, out / POOL_FILE)
    return out


def load_pool(folder: Path) -> TissuePool:
    """A pool folder as tensors; one sentence if it is incomplete."""
    folder = Path(folder)
    try:
        meta = json.loads((folder / POOL_FILE).read_text())
        tensors = load_file(str(folder / TENSOR_FILE))
        fractions, labels = tensors["fractions"], tensors["labels"]
    except (OSError, ValueError, KeyError, SafetensorError) as exc:
        raise MedSynthError(f"The tissue pool {folder} cannot be read ({exc}); write it again with the tissuepool module.") from None
    if fractions.shape[1] != len(TISSUES) + 1 or fractions.shape[0] != labels.shape[0]:
        raise MedSynthError(f"The tissue pool {folder} does not hold {len(TISSUES)} tissues and a brain mask per subject.")
    healthy = torch.tensor([s.get("tumour") is None for s in meta["subjects"]])
    if healthy.all() or not healthy.any():
        raise MedSynthError(f"The tissue pool {folder} needs subjects both with and without a tumour.")
    return TissuePool(fractions=fractions, labels=labels, healthy=healthy, spacing=float(meta["spacing"]), description=meta["description"])


def main(argv: list[str] | None = None) -> int:
    """Command line: write a pool folder."""
    parser = argparse.ArgumentParser(description="Write a tissue pool for domain-randomised channel-model training.")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tumour-cases", type=int, default=32)
    parser.add_argument("--healthy-cases", type=int, default=16)
    parser.add_argument("--seed", type=int, default=SEED_BASE)
    parser.add_argument("--merge", type=Path, nargs="+", help="pool folders to merge into --out instead of rendering")
    args = parser.parse_args(argv)
    try:
        if args.merge:
            merge_pools(args.merge, args.out)
            return 0
        build_pool(args.out, args.tumour_cases, args.healthy_cases, seed=args.seed, progress=lambda d, t: print(f"subject {d}/{t}", flush=True))
    except MedSynthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
