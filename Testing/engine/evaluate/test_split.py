"""TSTR's per-subject split: no subject on two sides (test, A, B), A and B the same size, one case per subject
giving the plain seeded split of cases, too few subjects refused in one sentence."""

from __future__ import annotations

import numpy as np
import pytest
from medsynth_engine.errors import MedSynthError
from medsynth_engine.evaluate.split import split_by_subject


def _sides(split, subjects):
    return [{subjects[i] for i in side} for side in (split.a, split.b, split.test)]


@pytest.mark.parametrize("sizes", [(4, 4, 4, 4, 4, 4, 4, 4), (6, 1, 3, 5, 2, 4, 1, 7, 2)])
def test_no_subject_is_on_two_sides(sizes):
    subjects = [f"case{s}" for s, n in enumerate(sizes) for _ in range(n)]
    order = np.random.default_rng(3).permutation(len(subjects))  # slices of one subject need not be adjacent
    subjects = [subjects[i] for i in order]
    splits, n_train, counts = split_by_subject(subjects, len(subjects), 100, 0.25, [0, 1, 2, 3])
    assert counts == {"subjects": len(sizes), "test_subjects": 2} and n_train >= 2
    for split in splits:
        a, b, test = _sides(split, subjects)
        assert not (a & b or a & test or b & test)
        assert len(split.a) == len(split.b) == n_train and len(set(split.a) | set(split.b) | set(split.test)) == len(split.a) + len(split.b) + len(split.test)
        assert len(test) == 2 and len(split.test) == sum(subjects.count(s) for s in test)  # every slice of a test subject
    assert len({tuple(s.test) for s in splits}) > 1  # each seed its own split


def test_one_case_per_subject_is_the_plain_split_of_cases():
    n, seeds = 11, [5, 6]
    for groups in (None, [f"s{k}" for k in range(n)]):
        splits, n_train, counts = split_by_subject(groups, n, 3, 0.25, seeds)
        assert n_train == 3 and counts == {"subjects": n, "test_subjects": 3}
        for seed, split in zip(seeds, splits, strict=True):
            order = np.random.default_rng(seed).permutation(n)
            assert split.a.tolist() == order[:3].tolist() and split.b.tolist() == order[3:6].tolist()
            assert split.test.tolist() == order[8:].tolist()


def test_the_synthetic_set_caps_the_training_sets():
    subjects = [f"c{k // 5}" for k in range(30)]
    splits, n_train, _ = split_by_subject(subjects, 30, 3, 0.25, [0])
    assert n_train == 3 and len({subjects[i] for i in splits[0].a}) == 1  # three slices of one subject, not one of three


def test_too_few_subjects_are_refused():
    with pytest.raises(MedSynthError, match=r"^TSTR needs at least 3 real subjects .*, not 2\.$"):
        split_by_subject(["a"] * 6 + ["b"] * 6, 12, 10, 0.25, [0])
    with pytest.raises(MedSynthError, match="at least 3 real cases"):
        split_by_subject(None, 2, 10, 0.25, [0])
