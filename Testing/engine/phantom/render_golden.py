"""Reference statistics of a few small phantom cases, so a faster renderer can prove it draws the same cases.

``python Testing/engine/phantom/render_golden.py`` records them into ``render_golden.json`` beside this file
(first recorded from the numpy-era renderer at b56a298; recorded again for phantom version 2, whose oedema is
brighter on T2 and FLAIR: the healthy case, every label count and T1/T1ce/CT stayed as they were, within 1 unit
of mean). ``test_render_golden.py`` renders the same cases and
compares: per-channel mean, standard deviation and percentiles, block means on a coarse grid (where things
are, not only how many), and label voxel counts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).with_name("render_golden.json")
CHANNELS = ("t1", "t1ce", "t2", "flair", "seg", "ct")
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
BLOCK = 8

#: name -> (seed, shape, spacing mm, tumour, centre): 4 mm and 2.5 mm grids are supersampled 2x per axis;
#: the 1 mm grid (the default spacing, never supersampled) is centred on the tumour so it holds all of it.
CASES: dict[str, tuple[int, tuple[int, int, int], float, bool, str]] = {
    "seed3-4mm": (3, (40, 48, 40), 4.0, True, "brain"),
    "seed11-2.5mm": (11, (64, 72, 64), 2.5, True, "brain"),
    "seed5-1mm-tumour": (5, (64, 64, 64), 1.0, True, "tumour"),
    "seed8-3mm-healthy": (8, (48, 56, 48), 3.0, False, "brain"),
}


def render_case(atlas, name: str) -> dict[str, np.ndarray]:
    """Render one of ``CASES`` with the installed renderer (all six channels)."""
    from medsynth_engine.phantom import Grid, draw_subject, render

    seed, shape, spacing, tumour, centre = CASES[name]
    params = draw_subject(seed, atlas, tumour=tumour)
    if centre == "tumour":
        middle = np.asarray(params.tumour.centre_mm)
    else:
        middle = atlas.brain_centre_mm + np.asarray(params.translation_mm)
    grid = Grid.centred(shape, (spacing,) * 3, middle)
    return render(params, atlas, grid, CHANNELS)


def block_means(volume: np.ndarray) -> np.ndarray:
    """Means over BLOCK^3 blocks (the grid's sides are multiples of BLOCK)."""
    x, y, z = (s // BLOCK for s in volume.shape)
    return volume.astype(np.float64).reshape(x, BLOCK, y, BLOCK, z, BLOCK).mean(axis=(1, 3, 5))


def case_stats(arrays: dict[str, np.ndarray]) -> dict:
    """The statistics compared by the test, JSON-ready."""
    stats: dict = {}
    for name, volume in arrays.items():
        if name == "seg":
            codes, counts = np.unique(volume, return_counts=True)
            stats[name] = {"counts": {str(int(c)): int(n) for c, n in zip(codes, counts, strict=True)}}
            continue
        v = volume.astype(np.float64)
        stats[name] = {
            "mean": float(v.mean()),
            "std": float(v.std()),
            "percentiles": [float(p) for p in np.percentile(v, PERCENTILES)],
            "blocks": np.round(block_means(volume), 2).ravel().tolist(),
        }
    return stats


def main() -> None:
    from medsynth_engine.phantom import AtlasLoader

    atlas = AtlasLoader().get()
    golden = {name: case_stats(render_case(atlas, name)) for name in CASES}
    GOLDEN.write_text("{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in golden.items()) + "\n}\n")
    print(f"wrote {GOLDEN}")


if __name__ == "__main__":
    main()
