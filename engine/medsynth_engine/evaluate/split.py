"""TSTR's split of the real cases into held-out test cases and two disjoint training sets, whole subjects apiece.

Slices of one subject (a 3D case sliced for a 2D model, or a 2D set whose manifest records each slice's subject)
are near-copies of each other: a held-out slice whose neighbour trained the segmenter measures memory, not
segmentation, and the control set B would share subjects with A. So the split draws subjects, not cases: the
test subjects are the last ``test_fraction`` of a seeded permutation of the subjects; A, then B, take whole
subjects from its front until each holds ``n_train`` cases, and both are cut to exactly that many. With one case
per subject (3D sets) this is the plain seeded split of cases: A = the first n_train of the permutation, B the
next n_train, the test cases its last ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import MedSynthError

__all__ = ["Split", "split_by_subject"]


@dataclass
class Split:
    """One seed's indices into the real cases: training set A (``real``), B (``control``) and the held-out ``test``."""

    a: np.ndarray
    b: np.ndarray
    test: np.ndarray


def _fill(members: list[np.ndarray], order: np.ndarray, n_train: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A and B of ``n_train`` cases each from whole subjects taken in ``order``, or None when they run out."""
    sets: list[np.ndarray] = []
    taken: list[np.ndarray] = []
    for subject in order:
        taken.append(members[subject])
        if sum(len(t) for t in taken) >= n_train:
            sets.append(np.concatenate(taken)[:n_train])
            taken = []
            if len(sets) == 2:
                return sets[0], sets[1]
    return None


def split_by_subject(
    groups: Sequence[str] | None, n_real: int, n_synthetic: int, test_fraction: float, seeds: Sequence[int]
) -> tuple[list[Split], int, dict[str, int]]:
    """Each seed's split of ``n_real`` cases whose subjects are ``groups`` (None: each case its own subject), the
    common training-set size (at most ``n_synthetic``), and the subject counts for the report."""
    if groups is not None and len(groups) != n_real:
        raise ValueError(f"{len(groups)} subjects for {n_real} real cases")
    if groups is None or len(set(groups)) == n_real:  # one case each: subject k is case k
        members = [np.array([k]) for k in range(n_real)]
    else:
        _, inverse = np.unique(np.asarray(list(groups)), return_inverse=True)
        members = [np.flatnonzero(inverse == s) for s in range(int(inverse.max()) + 1)]
    n_subjects = len(members)
    n_test = max(1, int(round(test_fraction * n_subjects)))
    orders = [np.random.default_rng(seed).permutation(n_subjects) for seed in seeds]
    pools = [order[: n_subjects - n_test] for order in orders]
    n_train = min(n_synthetic, min(sum(len(members[s]) for s in pool) for pool in pools) // 2)
    while n_train >= 1 and any(_fill(members, pool, n_train) is None for pool in pools):
        n_train -= 1
    if n_train < 1:
        what = "cases" if n_subjects == n_real else "subjects"
        raise MedSynthError(
            f"TSTR needs at least 3 real {what} (held-out test {what} and two training sets for the built-in control), not {n_subjects}."
        )
    splits = []
    for order, pool in zip(orders, pools, strict=True):
        a, b = _fill(members, pool, n_train)  # type: ignore[misc]
        test = np.concatenate([members[s] for s in order[n_subjects - n_test :]])
        splits.append(Split(a=a, b=b, test=test))
    return splits, n_train, {"subjects": n_subjects, "test_subjects": n_test}
