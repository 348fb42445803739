"""The memorisation audit of a 2D set: is any synthetic slice a copy of a training slice?

The 3D audit (``evaluate.audit``) compares whole cases; a 2D model learns slices, so here every synthetic slice
is compared with every axial training slice that shows head (``fingerprint.head_slices``) of every training case,
by normalised cross-correlation of fingerprints over the 4 in-plane flips and small shifts. The reference is the
typical distance ``d_ref`` from a training slice to its nearest slice of *another* subject (the neighbouring
slices of its own subject are near-copies of it, so they do not count); ``score = 1 - d / d_ref`` as in 3D:
1 for an exact copy, about 0 for a slice as far from the training slices as subjects are from each other.

The training slices' fingerprints go to a scratch file on disk (each case read once); every pair is scored at
zero shift by one matrix product per chunk and flip, keeping a few candidates per query, and only those are
searched over shifts with FFT cross-correlation.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import nibabel as nib
import numpy as np
import torch

from ..errors import MedSynthError
from ..evaluate.audit import DEFAULT_SHIFT, DEFAULT_THRESHOLD, AuditResult, open_audit
from ..evaluate.sets import CaseSet, iter_cases
from .fingerprint import DEFAULT_GRID, head_slices, slice_fingerprint

__all__ = ["SliceAuditResult", "run_slice_audit", "is_slice_set"]

_FLIPS: tuple[tuple[int, ...], ...] = ((), (0,), (1,), (0, 1))
_CHUNK = 256
_CANDIDATES = 3
_REFERENCE_SLICES = 64


@dataclass
class SliceAuditResult(AuditResult):
    """The 3D audit's report with slices for cases: ``n_training`` counts training slices, shifts are in pixels."""

    n_training_cases: int = 0
    dimensions: ClassVar[int] = 2

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "n_training_cases": self.n_training_cases}

    def shareable(self) -> dict[str, Any]:
        """Scores and settings, no training case names or slice positions."""
        shared = super().shareable()
        shared["cases"] = [{k: v for k, v in c.items() if k != "nearest_training_slice"} for c in shared["cases"]]
        return shared


def is_slice_set(case_set: CaseSet) -> bool:
    """True when every case of the set is a single slice (depth 1), as 2D families write them (headers only)."""
    for case in case_set.cases:
        path = next(iter(case.files.values()))
        try:
            shape = nib.load(path).shape
        except Exception:  # noqa: BLE001 - any unreadable file: the audit reads it again and names it
            return False
        if len(shape) == 3 and shape[2] != 1 or len(shape) > 3:
            return False
    return bool(case_set.cases)


def _planes(arrays: dict[str, np.ndarray], channels: tuple[str, ...], k: int) -> list[np.ndarray]:
    return [arrays[c][:, :, k] if arrays[c].ndim == 3 else arrays[c] for c in channels]


def _depth(case_set: CaseSet) -> int:
    """The number of axial slices in the set, from the headers (an upper bound for the scratch file)."""
    total = 0
    for case in case_set.cases:
        shape = nib.load(next(iter(case.files.values()))).shape
        total += shape[2] if len(shape) >= 3 else 1
    return total


def _shift_window(grid: int, max_shift: int) -> torch.Tensor:
    offsets = torch.arange(grid)
    near = (offsets <= max_shift) | (offsets >= grid - max_shift)
    return near[:, None] & near[None, :]


def _correlation(query_fft: torch.Tensor, train: torch.Tensor) -> torch.Tensor:
    """Per-channel circular cross-correlation (C, G, G) of a query (as its FFT) with a training fingerprint."""
    grid = train.shape[1]
    return torch.fft.irfftn(query_fft * torch.fft.rfftn(train, dim=(1, 2)).conj(), s=(grid, grid), dim=(1, 2))


def _top_candidates(queries: torch.Tensor, store: np.ndarray, n: int, owners: torch.Tensor, own: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """The best few (zero-shift NCC, training slice, flip) per query; a reference query skips its own subject."""
    flat = queries.reshape(queries.shape[0], -1)
    top_v = torch.empty(queries.shape[0], 0)
    top_i = torch.empty(queries.shape[0], 0, dtype=torch.long)
    top_f = torch.empty(queries.shape[0], 0, dtype=torch.long)
    for start in range(0, n, _CHUNK):
        prints = torch.from_numpy(np.array(store[start : min(start + _CHUNK, n)]))
        scores, flips = torch.stack([flat @ prints.flip([a + 2 for a in f]).reshape(len(prints), -1).T for f in _FLIPS]).max(0)
        scores = scores.masked_fill(own[:, None] == owners[None, start : start + len(prints)], -2.0)
        values = torch.cat([top_v, scores], dim=1)
        ids = torch.cat([top_i, torch.arange(start, start + len(prints)).expand(len(queries), -1)], dim=1)
        flip_ids = torch.cat([top_f, flips], dim=1)
        best = values.topk(min(_CANDIDATES, values.shape[1]), dim=1).indices
        top_v, top_i, top_f = values.gather(1, best), ids.gather(1, best), flip_ids.gather(1, best)
    return top_v, top_i, top_f


def run_slice_audit(
    synthetic: Path | str,
    train: Path | str,
    *,
    threshold: float = DEFAULT_THRESHOLD,
    channels: tuple[str, ...] | None = None,
    grid: int = DEFAULT_GRID,
    max_shift: int = DEFAULT_SHIFT,
    reference_slices: int = _REFERENCE_SLICES,
    progress: Callable[[int, int], None] | None = None,
) -> SliceAuditResult:
    """Audit every slice of a 2D synthetic set against every head slice of the training cases (streamed)."""
    syn_set, train_set, chans = open_audit(
        synthetic, train, threshold=threshold, channels=channels, grid=grid, max_shift=max_shift,
        unit="pixels", why="the audit compares slices against other subjects' slices",
    )
    n_syn, total = len(syn_set), len(syn_set) + len(train_set)
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress:
            progress(done[0], total)

    with torch.no_grad(), tempfile.TemporaryDirectory(prefix="medsynth-audit2d-") as scratch:
        prints = []
        for _, case in iter_cases(syn_set, chans):
            prints.append(slice_fingerprint(_planes(case.arrays, chans, 0), grid))
            tick()
        synthetic_prints = torch.stack(prints)
        try:
            store = np.lib.format.open_memmap(
                Path(scratch) / "train.npy", mode="w+", dtype=np.float32, shape=(_depth(train_set), len(chans), grid, grid)
            )
        except OSError as exc:
            raise MedSynthError(f"No room for the audit's scratch file in {scratch} ({exc.strerror}); free space or set TMPDIR.") from None
        where: list[tuple[int, int]] = []  # (training case, axial index) of each stored slice
        for index, case in iter_cases(train_set, chans):
            planes = [case.arrays[c] if case.arrays[c].ndim == 3 else case.arrays[c][..., None] for c in chans]
            for k in head_slices(planes):
                store[len(where)] = slice_fingerprint(_planes(case.arrays, chans, k), grid).numpy()
                where.append((index, k))
            tick()
        n = len(where)
        owners = torch.tensor([w[0] for w in where])
        if n < 2 or len(set(owners.tolist())) < 2:
            raise MedSynthError(f"The training set {train} has head slices in fewer than 2 cases; the audit needs at least 2 subjects.")
        ref_index = sorted(np.random.default_rng(0).choice(n, size=min(n, reference_slices), replace=False).tolist())
        queries = torch.cat([synthetic_prints, torch.from_numpy(np.array(store[ref_index]))])
        own = torch.cat([torch.full((n_syn,), -1), owners[ref_index]])
        top_v, top_i, top_f = _top_candidates(queries, store, n, owners, own)
        window = _shift_window(grid, max_shift)
        best = []
        for q in range(len(queries)):
            query_fft = torch.fft.rfftn(queries[q], dim=(1, 2))
            found: tuple[float, int, int, int, torch.Tensor | None] = (-2.0, -1, 0, 0, None)
            for value, index, flip in zip(top_v[q].tolist(), top_i[q].tolist(), top_f[q].tolist(), strict=True):
                if value <= -2.0:
                    continue
                corr = _correlation(query_fft, torch.from_numpy(np.array(store[index])).flip([a + 1 for a in _FLIPS[flip]]))
                combined = corr.sum(0).masked_fill(~window, -2.0)
                flat = int(combined.argmax())
                if float(combined.reshape(-1)[flat]) > found[0]:
                    found = (float(combined.reshape(-1)[flat]), index, flip, flat, corr)
            best.append(found)
        del store
    reference = float(np.median([1.0 - best[n_syn + k][0] for k in range(len(ref_index))]))
    if reference <= 1e-6:
        raise MedSynthError("The training set's slices are copies of each other's (typical distance 0); remove the duplicates.")
    result = SliceAuditResult(threshold, chans, reference, n, len(ref_index), grid, max_shift, n_training_cases=len(train_set))
    for q, case in enumerate(syn_set.cases):
        ncc, index, flip, flat, corr = best[q]
        shift = [int(p) if p <= grid // 2 else int(p) - grid for p in np.unravel_index(flat, (grid, grid))]
        per_channel = [float(c.reshape(-1)[flat]) * len(chans) for c in corr] if corr is not None else []
        nearest = {"nearest_training_case": train_set.cases[where[index][0]].id, "nearest_training_slice": where[index][1]}
        result.add(case.id, nearest, ncc, per_channel, _FLIPS[flip], shift)
    return result
