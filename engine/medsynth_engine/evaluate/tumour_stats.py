"""Per-class tumour statistics of a set: how often each label is present, how large, and where.

Why: a generator can draw convincing images with the wrong tumours (oedema only, no necrosis, tumours always
in one place), which image metrics hardly see and a segmenter trained on the set learns. For each BraTS label
(and the whole tumour): presence rate (cases with at least one voxel), volume in ml over the cases that have
it (median and 10th/90th percentiles), and the mean centroid in mm from the head's centre (RAS) with its spread.
For a set of 2D slices the same statistics are per slice, with the area in mm^2 in place of the volume
(``size_key`` "area_mm2" instead of "volume_ml").
"""

from __future__ import annotations

import numpy as np

from MedSynthLib.conventions import BRATS_LABELS

__all__ = ["CLASSES", "SIZE_KEYS", "case_tumour", "set_statistics", "compare"]

#: class name -> BraTS codes it covers
CLASSES: dict[str, tuple[int, ...]] = {**{name: (code,) for code, name in BRATS_LABELS.items()}, "whole": tuple(BRATS_LABELS)}
#: spatial dimensions -> the key of a class's size: volume in ml (3D), area in mm^2 (a 2D slice)
SIZE_KEYS = {3: "volume_ml", 2: "area_mm2"}


def case_tumour(seg: np.ndarray, spacing: tuple[float, ...], head: np.ndarray) -> dict[str, tuple[float, list[float] | None]]:
    """Class -> (volume in ml, or area in mm^2 for a slice; centroid in mm from the head's centre or None) for one label map on its grid."""
    unit = float(np.prod(spacing)) / (1000.0 if seg.ndim == 3 else 1.0)  # one voxel in ml, or one pixel in mm^2
    centre = np.argwhere(head).mean(0) if head.any() else (np.array(seg.shape) - 1) / 2
    out: dict[str, tuple[float, list[float] | None]] = {}
    for name, codes in CLASSES.items():
        mask = np.isin(seg, codes)
        n = int(mask.sum())
        out[name] = (n * unit, ((np.argwhere(mask).mean(0) - centre) * np.asarray(spacing)).tolist() if n else None)
    return out


def set_statistics(cases: list[dict[str, tuple[float, list[float] | None]]], size_key: str = "volume_ml") -> dict[str, dict]:
    """Presence rate, size (volume or area) distribution and centroid location of each class over a set's cases."""
    stats = {}
    for name in CLASSES:
        volumes = np.array([c[name][0] for c in cases if c[name][0] > 0])
        centroids = np.array([c[name][1] for c in cases if c[name][1] is not None])
        stats[name] = {
            "presence_rate": round(len(volumes) / max(len(cases), 1), 4),
            size_key: None
            if not len(volumes)
            else {q: round(float(np.percentile(volumes, p)), 3) for q, p in (("p10", 10), ("median", 50), ("p90", 90))}
            | {"mean": round(float(volumes.mean()), 3)},
            "centroid_mm": None
            if not len(centroids)
            else {"mean": [round(float(v), 2) for v in centroids.mean(0)], "spread": round(float(np.linalg.norm(centroids.std(0))), 2)},
        }
    return stats


def compare(synthetic: dict[str, dict], real: dict[str, dict], size_key: str = "volume_ml") -> dict[str, dict]:
    """Per class: presence rate and median volume (or area) of synthetic relative to real (1 = same), centroid shift in mm."""
    out = {}
    for name in CLASSES:
        s, r = synthetic[name], real[name]
        volume = s[size_key]["median"] / r[size_key]["median"] if s[size_key] and r[size_key] and r[size_key]["median"] else None
        shift = None
        if s["centroid_mm"] and r["centroid_mm"]:
            shift = round(float(np.linalg.norm(np.subtract(s["centroid_mm"]["mean"], r["centroid_mm"]["mean"]))), 2)
        out[name] = {
            "presence_ratio": round(s["presence_rate"] / r["presence_rate"], 4) if r["presence_rate"] else None,
            f"median_{size_key.split('_')[0]}_ratio": round(volume, 4) if volume is not None else (0.0 if r[size_key] else None),
            "centroid_shift_mm": shift,
        }
    return out
