"""Training slices as the poster took them: each subject's axial slices with the most brain and tumour content.

Each case goes through the shared readers and preprocessing (``data.layouts``, ``data.validate``,
``data.preprocess``: RAS, the model's spacing, a cube around the head, [-1, 1] per channel) and then only its
``keep`` best axial slices are kept, so memory holds slices, never the whole set of volumes. A slice's score is
its count of head voxels (any image channel above its low percentile) plus its count of tumour voxels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from MedSynthLib.conventions import LABEL_CHANNEL

from ...data.layouts import find_cases
from ...data.preprocess import LABEL_CODES, PreprocessSpec, preprocess_case
from ...data.training_set import choose_channels
from ...data.validate import CaseProblem, validate_case
from ...errors import MedSynthError

__all__ = ["SliceSet", "load_slices", "best_slices", "slice_case"]


@dataclass
class SliceSet:
    """Images (N, C, X, Y) in [-1, 1], label codes (N, X, Y) or None, and where they came from."""

    layout: str
    channels: tuple[str, ...]
    subjects: int
    images: torch.Tensor
    labels: torch.Tensor | None
    scale: dict[str, dict[str, float]]
    skipped: list[dict[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batch(self, index: torch.Tensor) -> torch.Tensor:
        """Network input for the slices ``index``: images then the one-hot label classes."""
        images = self.images[index]
        if self.labels is None:
            return images
        codes = self.labels[index]
        return torch.cat([images, torch.stack([(codes == c) for c in LABEL_CODES], dim=1).to(images.dtype)], dim=1)


def best_slices(images: np.ndarray, labels: np.ndarray | None, keep: int) -> np.ndarray:
    """Indices (ascending) of the ``keep`` axial slices of (C, X, Y, Z) ``images`` with the most head and tumour."""
    head = (images > -0.99).any(axis=0).sum(axis=(0, 1))
    tumour = (labels > 0).sum(axis=(0, 1)) if labels is not None else 0
    score = head + tumour
    order = np.argsort(-score, kind="stable")[: min(keep, images.shape[-1])]
    return np.sort(order)


def slice_case(
    arrays: dict[str, np.ndarray], affine: np.ndarray, spec: PreprocessSpec, keep: int
) -> tuple[np.ndarray, np.ndarray | None, dict[str, tuple[float, float]]]:
    """One case as the 2D training takes it: the shared preprocessing onto the (X, Y, Z) ``spec``, then its ``keep``
    best axial slices: images (k, C, X, Y) in [-1, 1] (the image channels in ``arrays``' order), label codes (k, X, Y)
    or None, and each channel's (low, high) intensity scale."""
    out, scale = preprocess_case(arrays, affine, spec)
    volume = np.stack([out[c] for c in out if c != LABEL_CHANNEL])
    labels = out.get(LABEL_CHANNEL)
    chosen = best_slices(volume, labels, keep)
    kept = None if labels is None else np.moveaxis(labels[..., chosen], -1, 0).astype(np.uint8)
    return np.moveaxis(volume[..., chosen], -1, 0), kept, scale


def load_slices(
    folder: Path,
    spec: PreprocessSpec,
    keep: int,
    *,
    channels: tuple[str, ...] | None = None,
    skip_bad: bool = False,
    progress: Callable[[int, int], None] | None = None,
) -> SliceSet:
    """Validate and preprocess every case, keeping ``keep`` axial slices of each; a bad case stops all unless ``skip_bad``."""
    layout, cases = find_cases(Path(folder), channels)
    channels = choose_channels(cases, channels)
    images_of = [c for c in channels if c != LABEL_CHANNEL]
    stacks, label_stacks, lows, highs, problems = [], [], [], [], []
    for done, case in enumerate(cases, start=1):
        try:
            arrays, affine = validate_case(case, channels)
        except CaseProblem as exc:
            problems.append(exc)
            continue
        images, labels, scale = slice_case(arrays, affine, spec, keep)
        stacks.append(images)
        if labels is not None:
            label_stacks.append(labels)
        lows.append({c: scale[c][0] for c in images_of})
        highs.append({c: scale[c][1] for c in images_of})
        if progress:
            progress(done, len(cases))
    if problems and not skip_bad:
        more = f" ({len(problems) - 1} more problem(s) in other cases)" if len(problems) > 1 else ""
        raise MedSynthError(f"{problems[0].problem.rstrip('.')}{more}; fix the data or use --skip-bad to train on the other cases.")
    if not stacks:
        raise MedSynthError(f"None of the {len(cases)} case(s) in {folder} can be used; the first problem: {problems[0].problem}")
    return SliceSet(
        layout=layout,
        channels=channels,
        subjects=len(stacks),
        images=torch.from_numpy(np.concatenate(stacks)),
        labels=torch.from_numpy(np.concatenate(label_stacks)) if label_stacks else None,
        scale={c: {"low": float(np.median([x[c] for x in lows])), "high": float(np.median([x[c] for x in highs]))} for c in images_of},
        skipped=[{"case": p.case, "file": str(p.path) if p.path else "", "problem": p.problem} for p in problems],
    )
