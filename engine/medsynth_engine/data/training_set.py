"""A whole training set in memory, validated and preprocessed, with a report of what was skipped."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from MedSynthLib.conventions import ALL_CHANNELS, LABEL_CHANNEL

from ..errors import MedSynthError
from .layouts import Case, find_cases
from .preprocess import LABEL_CODES, PreprocessSpec, preprocess_case
from .validate import CaseProblem, validate_case

__all__ = ["TrainingSet", "load_training_set", "choose_channels"]

TRAINABLE = ("t1", "t1ce", "t2", "flair", LABEL_CHANNEL)


@dataclass
class TrainingSet:
    """Images (N, C, X, Y, Z) in [-1, 1], label codes (N, X, Y, Z) or None, and where they came from."""

    layout: str
    channels: tuple[str, ...]
    case_ids: list[str]
    images: torch.Tensor
    labels: torch.Tensor | None
    scale: dict[str, dict[str, float]]
    skipped: list[dict[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def batch(self, index: torch.Tensor) -> torch.Tensor:
        """Network input for the cases ``index``: images then the one-hot label classes."""
        images = self.images[index]
        if self.labels is None:
            return images
        codes = self.labels[index]
        hot = torch.stack([(codes == c) for c in LABEL_CODES], dim=1).to(images.dtype)
        return torch.cat([images, hot], dim=1)


def choose_channels(cases: list[Case], channels: tuple[str, ...] | None) -> tuple[str, ...]:
    if channels is not None:
        unusable = [c for c in channels if c not in TRAINABLE]
        if unusable:
            raise MedSynthError(f"pgan3d trains on t1, t1ce, t2, flair and seg, not {', '.join(unusable)}.")
        return channels
    common = set.intersection(*(set(c.files) for c in cases))
    chosen = tuple(c for c in ALL_CHANNELS if c in common and c in TRAINABLE)
    if not [c for c in chosen if c != LABEL_CHANNEL]:
        raise MedSynthError("No image channel (t1, t1ce, t2, flair) is present in every case; choose one with --channels.")
    return chosen


def load_training_set(
    folder: Path,
    spec: PreprocessSpec,
    *,
    channels: tuple[str, ...] | None = None,
    skip_bad: bool = False,
    workers: int = 2,
    progress: Callable[[int, int], None] | None = None,
) -> TrainingSet:
    """Validate every case, then preprocess the good ones; a bad case stops everything unless ``skip_bad``."""
    layout, cases = find_cases(Path(folder), channels)
    channels = choose_channels(cases, channels)
    results: list = [None] * len(cases)

    def work(i: int) -> None:
        try:
            arrays, affine = validate_case(cases[i], channels)
            results[i] = preprocess_case(arrays, affine, spec)
        except CaseProblem as exc:
            results[i] = exc

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for done, _ in enumerate(pool.map(work, range(len(cases))), start=1):
            if progress:
                progress(done, len(cases))
    problems = [r for r in results if isinstance(r, CaseProblem)]
    if problems and not skip_bad:
        more = f" ({len(problems) - 1} more problem(s) in other cases)" if len(problems) > 1 else ""
        raise MedSynthError(f"{problems[0].problem.rstrip('.')}{more}; fix the data or use --skip-bad to train on the other cases.")
    good = [(case, r) for case, r in zip(cases, results, strict=True) if not isinstance(r, CaseProblem)]
    if not good:
        raise MedSynthError(f"None of the {len(cases)} case(s) in {folder} can be used; the first problem: {problems[0].problem}")
    images = [c for c in channels if c != LABEL_CHANNEL]
    stack = np.stack([np.stack([r[0][c] for c in images]) for _, r in good])
    labels = None
    if LABEL_CHANNEL in channels:
        labels = torch.from_numpy(np.stack([r[0][LABEL_CHANNEL] for _, r in good]).astype(np.uint8))
    scale = {c: {"low": float(np.median([r[1][c][0] for _, r in good])), "high": float(np.median([r[1][c][1] for _, r in good]))} for c in images}
    return TrainingSet(
        layout=layout,
        channels=channels,
        case_ids=[case.id for case, _ in good],
        images=torch.from_numpy(stack),
        labels=labels,
        scale=scale,
        skipped=[{"case": p.case, "file": str(p.path) if p.path else "", "problem": p.problem} for p in problems],
    )
