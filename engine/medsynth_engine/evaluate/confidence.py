"""95 % confidence intervals for TSTR Dice by a two-level bootstrap: training seeds, then held-out cases (subjects).

Why two levels: a Dice mean varies both with the model a training run happens to produce (seed, split) and
with the test cases it is measured on. Each resample draws the seeds with replacement and, within each drawn
seed, its held-out cases with replacement; a ratio is computed on the same draw for numerator and
denominator (paired), so what the two conditions share cancels. Percentile intervals, fixed resampling seed.
"""

from __future__ import annotations

import numpy as np

__all__ = ["RESAMPLES", "bootstrap_means", "interval"]

RESAMPLES = 2000


def bootstrap_means(
    values: dict[str, np.ndarray], resamples: int = RESAMPLES, seed: int = 0, subjects: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """``values``: condition -> (seeds, cases, K) per-case scores on the same cases; -> (resamples, K) means per condition.

    ``subjects`` (seeds, cases): the subject of each seed's held-out case. Where a subject has several cases (the
    slices of one volume in 2D), the second level draws subjects, each with all its cases (a cluster bootstrap):
    neighbouring slices are nearly copies, and drawing them one by one would give intervals far too narrow.
    """
    first = next(iter(values.values()))
    n_seeds, n_cases = first.shape[:2]
    rng = np.random.default_rng(seed)
    seeds = rng.integers(n_seeds, size=(resamples, n_seeds))
    if subjects is None or all(len(np.unique(row)) == n_cases for row in subjects):  # one case a subject
        cases = rng.integers(n_cases, size=(resamples, n_seeds, n_cases))
        return {name: v[seeds[:, :, None], cases].mean(axis=(1, 2)) for name, v in values.items()}
    weights = np.empty((n_seeds, resamples, n_cases))  # per seed: how often each case's subject was drawn
    for k, row in enumerate(np.asarray(subjects)):
        ids, case_subject = np.unique(row, return_inverse=True)
        weights[k] = rng.multinomial(len(ids), np.full(len(ids), 1.0 / len(ids)), size=resamples)[:, case_subject]
    out = {}
    for name, v in values.items():
        w = weights[seeds, np.arange(resamples)[:, None]]  # (resamples, drawn seeds, cases)
        out[name] = np.einsum("rsc,rsck->rk", w, v[seeds]) / w.sum(axis=(1, 2))[:, None]
    return out


def interval(samples: np.ndarray) -> list[float] | None:
    """The 2.5th and 97.5th percentiles of bootstrap samples (None when none is finite), rounded for the report."""
    finite = samples[np.isfinite(samples)]
    if not finite.size:
        return None
    low, high = np.percentile(finite, (2.5, 97.5))
    return [round(float(low), 4), round(float(high), 4)]
