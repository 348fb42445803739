"""Memorisation audit: is any synthetic case a copy of a training case?

For every synthetic case: its nearest training case by normalised cross-correlation (NCC) of fingerprints
(see ``fingerprint``), searched over the 8 axis flips and small shifts, per channel and combined; and the
distance ``d = 1 - NCC`` of that nearest neighbour relative to the typical nearest-neighbour distance
between distinct training cases (``d_ref``, the median over a sample of training cases of their distance to
the nearest *other* training case). ``score = 1 - d / d_ref``: 1 for an exact copy, about 0 for a case as
far from the training set as training cases are from each other. Cases whose score reaches the threshold
are probable copies.

The training set is read once, case by case; its fingerprints go to a scratch file on disk. Then every
pair is scored at zero shift (one matrix product per chunk and flip) keeping a few candidates per query,
and only the candidates are searched over shifts exactly with FFT cross-correlation. Only the synthetic
fingerprints and one chunk stay in memory.
"""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from ..errors import MedSynthError
from .fingerprint import DEFAULT_GRID, fingerprint
from .sets import CaseSet, common_channels, iter_cases, open_set

__all__ = ["AuditResult", "open_audit", "run_audit", "DEFAULT_THRESHOLD", "DEFAULT_SHIFT"]

DEFAULT_THRESHOLD = 0.5
#: Largest shift searched, in fingerprint voxels per axis (2 of 32: about 6% of the head's extent).
DEFAULT_SHIFT = 2
_FLIPS: tuple[tuple[int, ...], ...] = tuple(
    tuple(axis for axis, on in enumerate(bits) if on) for bits in itertools.product((0, 1), repeat=3)
)
_CHUNK = 16
_CANDIDATES = 3
_REFERENCE_CASES = 32


@dataclass
class AuditResult:
    """Every synthetic case with its nearest training case and score, plus how the scores were made."""

    threshold: float
    channels: tuple[str, ...]
    reference_distance: float
    n_training: int
    n_reference: int
    grid: int
    max_shift: int
    cases: list[dict[str, Any]] = field(default_factory=list)
    dimensions: ClassVar[int] = 3  # what a case is: a volume (3) or a slice (2, ``audit2d``)

    def add(self, case: str, nearest: dict[str, Any], ncc: float, per_channel: list[float], flip: tuple[int, ...], shift: list[int]) -> None:
        """One synthetic case's row: where its nearest training case (or slice) is, the NCC, and its score."""
        score = 1.0 - (1.0 - ncc) / self.reference_distance
        self.cases.append(
            {
                "case": case,
                **nearest,
                "ncc": round(ncc, 6),
                "ncc_per_channel": {c: round(v, 6) for c, v in zip(self.channels, per_channel, strict=True)},
                "flip_axes": list(flip),
                "shift_voxels": shift,
                "score": round(score, 6),
                "flagged": bool(score >= self.threshold),
            }
        )

    @property
    def flagged(self) -> list[dict[str, Any]]:
        return [c for c in self.cases if c["flagged"]]

    @property
    def memorised_fraction(self) -> float:
        return len(self.flagged) / len(self.cases) if self.cases else 0.0

    def settings(self) -> dict[str, Any]:
        return {
            "dimensions": self.dimensions,
            "threshold": self.threshold,
            "channels": list(self.channels),
            "score": "1 - d / d_ref, d = 1 - NCC of the nearest training case over flips and shifts",
            "reference_distance": self.reference_distance,
            "n_training": self.n_training,
            "n_reference": self.n_reference,
            "grid": self.grid,
            "max_shift_voxels": self.max_shift,
        }

    def to_dict(self) -> dict[str, Any]:
        """Full report (names training cases: keep it inside the hospital)."""
        return {
            **self.settings(),
            "n_synthetic": len(self.cases),
            "n_flagged": len(self.flagged),
            "memorised_fraction": self.memorised_fraction,
            "max_score": max((c["score"] for c in self.cases), default=None),
            "cases": self.cases,
        }

    def shareable(self) -> dict[str, Any]:
        """The audit for a set's manifest: scores and settings, no training case names or files."""
        cases = [{k: v for k, v in c.items() if k != "nearest_training_case"} for c in self.cases]
        return {**self.to_dict(), "cases": cases}


def _fingerprints(case_set: CaseSet, channels: tuple[str, ...], grid: int, indices: list[int] | None, tick) -> torch.Tensor:
    prints = []
    for _, case in iter_cases(case_set, channels, indices):
        prints.append(fingerprint(case, channels, grid))
        tick()
    return torch.stack(prints)


def _update_top(top: tuple[torch.Tensor, ...], scores: torch.Tensor, flips: torch.Tensor, index: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Keep the best few (score, training index, flip) per query."""
    values = torch.cat([top[0], scores], dim=1)
    indices = torch.cat([top[1], index.expand(scores.shape[0], -1)], dim=1)
    flip_ids = torch.cat([top[2], flips], dim=1)
    best = values.topk(min(_CANDIDATES, values.shape[1]), dim=1).indices
    return values.gather(1, best), indices.gather(1, best), flip_ids.gather(1, best)


def _shift_window(grid: int, max_shift: int) -> torch.Tensor:
    offsets = torch.arange(grid)
    near = (offsets <= max_shift) | (offsets >= grid - max_shift)
    return near[:, None, None] & near[None, :, None] & near[None, None, :]


def _best_shift(query_fft: torch.Tensor, train: torch.Tensor, window: torch.Tensor) -> tuple[float, int]:
    """Best combined NCC over circular shifts within the window (one inverse FFT of the channel sum), and where."""
    grid = train.shape[1]
    product = (query_fft * torch.fft.rfftn(train, dim=(1, 2, 3)).conj()).sum(0)
    combined = torch.fft.irfftn(product, s=(grid,) * 3).masked_fill(~window, -2.0)
    flat = int(combined.argmax())
    return float(combined.reshape(-1)[flat]), flat


def _per_channel(query_fft: torch.Tensor, train: torch.Tensor, flat: int) -> list[float]:
    """NCC of each channel at the chosen shift (each channel has norm 1/sqrt(C), hence the factor C)."""
    grid = train.shape[1]
    corr = torch.fft.irfftn(query_fft * torch.fft.rfftn(train, dim=(1, 2, 3)).conj(), s=(grid,) * 3, dim=(1, 2, 3))
    return [float(c.reshape(-1)[flat]) * train.shape[0] for c in corr]


def open_audit(
    synthetic: Path | str,
    train: Path | str,
    *,
    threshold: float,
    channels: tuple[str, ...] | None,
    grid: int,
    max_shift: int,
    unit: str = "voxels",
    why: str = "the audit compares against their typical distance",
) -> tuple[CaseSet, CaseSet, tuple[str, ...]]:
    """The settings checked and both sets opened, as the 3D and the 2D audit (``audit2d``) start: the synthetic set,
    the training set and the channels compared, or one sentence saying what is wrong."""
    if not 0.0 < threshold <= 1.0:
        raise MedSynthError(f"The threshold must be in (0, 1], not {threshold}.")
    if not 8 <= grid <= 128 or not 0 <= max_shift < grid // 4:
        raise MedSynthError(f"The audit grid must be 8-128 {unit} and the shift below a quarter of it, not {grid} and {max_shift}.")
    syn_set, train_set = open_set(synthetic, "synthetic", channels), open_set(train, "training", channels)
    chans = common_channels([syn_set, train_set], channels)
    if len(train_set) < 2:
        raise MedSynthError(f"The training set needs at least 2 cases: {why}.")
    return syn_set, train_set, chans


def run_audit(
    synthetic: Path | str,
    train: Path | str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    channels: tuple[str, ...] | None = None,
    grid: int = DEFAULT_GRID,
    max_shift: int = DEFAULT_SHIFT,
    reference_cases: int = _REFERENCE_CASES,
    progress: Callable[[int, int], None] | None = None,
) -> AuditResult:
    """Audit every synthetic case against the training set (streamed); see the module docstring."""
    syn_set, train_set, chans = open_audit(synthetic, train, threshold=threshold, channels=channels, grid=grid, max_shift=max_shift)
    n_syn, n_train = len(syn_set), len(train_set)
    rng = np.random.default_rng(0)
    ref_index = sorted(rng.choice(n_train, size=min(n_train, reference_cases), replace=False).tolist())
    total = n_syn + n_train
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress:
            progress(min(done[0], total), total)

    with torch.no_grad(), tempfile.TemporaryDirectory(prefix="medsynth-audit-") as scratch:
        synthetic_prints = _fingerprints(syn_set, chans, grid, None, tick)
        # Training fingerprints go to a scratch file on disk (0.5 MB a case), so each NIfTI file is read once.
        try:
            store = np.lib.format.open_memmap(
                Path(scratch) / "train.npy", mode="w+", dtype=np.float32, shape=(n_train, *synthetic_prints.shape[1:])
            )
        except OSError as exc:
            raise MedSynthError(f"No room for the audit's scratch file in {scratch} ({exc.strerror}); free space or set TMPDIR.") from None
        for index, case in iter_cases(train_set, chans):
            store[index] = fingerprint(case, chans, grid).numpy()
            tick()
        store.flush()
        queries = torch.cat([synthetic_prints, torch.from_numpy(np.array(store[ref_index]))])
        flat_queries = queries.reshape(queries.shape[0], -1)
        own = torch.tensor([-1] * n_syn + ref_index)  # a reference query never matches itself
        empty = torch.empty(queries.shape[0], 0, dtype=torch.long)
        top: tuple[torch.Tensor, ...] = (torch.empty(queries.shape[0], 0), empty, empty)
        for start in range(0, n_train, _CHUNK):
            prints = torch.from_numpy(np.array(store[start : start + _CHUNK]))
            ids = torch.arange(start, start + len(prints))
            scores, flips = torch.stack([flat_queries @ prints.flip([a + 2 for a in f]).reshape(len(prints), -1).T for f in _FLIPS]).max(0)
            scores = scores.masked_fill(own[:, None] == ids[None, :], -2.0)
            top = _update_top(top, scores, flips, ids[None, :])
        top_v, top_i, top_f = top
        window = _shift_window(grid, max_shift)
        best: list[tuple[float, list[float], tuple[int, ...], list[int], int]] = []
        for q in range(queries.shape[0]):
            query_fft = torch.fft.rfftn(queries[q], dim=(1, 2, 3))
            found = (-2.0, -1, 0, 0)
            for value, index, flip in zip(top_v[q].tolist(), top_i[q].tolist(), top_f[q].tolist(), strict=True):
                if value <= -2.0:
                    continue
                train_print = torch.from_numpy(np.array(store[index])).flip([a + 1 for a in _FLIPS[flip]])
                ncc, flat = _best_shift(query_fft, train_print, window)
                if ncc > found[0]:
                    found = (ncc, index, flip, flat)
            ncc, index, flip, flat = found
            per_channel = []
            if q < n_syn:
                train_print = torch.from_numpy(np.array(store[index])).flip([a + 1 for a in _FLIPS[flip]])
                per_channel = _per_channel(query_fft, train_print, flat)
            shift = [int(p) if p <= grid // 2 else int(p) - grid for p in np.unravel_index(flat, (grid,) * 3)]
            best.append((ncc, per_channel, _FLIPS[flip], shift, index))
        del store
    ref_distances = [1.0 - best[n_syn + k][0] for k in range(len(ref_index))]
    reference = float(np.median(ref_distances))
    if reference <= 1e-6:
        raise MedSynthError("The training set's cases are copies of each other (typical distance 0); remove the duplicates.")
    result = AuditResult(threshold, chans, reference, n_train, len(ref_index), grid, max_shift)
    for q, case in enumerate(syn_set.cases):
        ncc, per_channel, flip, shift, index = best[q]
        result.add(case.id, {"nearest_training_case": train_set.cases[index].id}, ncc, per_channel, flip, shift)
    return result
