"""The broken NIfTI corpus (bad_nifti_corpus.py) through a real engine's job endpoints: a 4xx naming the file.

add-channel and add-tumour jobs read their one case whole when they are submitted, so every entry is refused there;
export and fine-tune jobs check every header of their set (a set may hold thousands of files), so the entries a
header shows are refused at submission, and nothing is queued for any of them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from bad_nifti_corpus import CORPUS
from medsynth_engine.errors import MedSynthError
from medsynth_engine.nifti_io import read_header, read_nifti

from MedSynthLib.client import EngineError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bad_sets(make_phantom_set, tmp_path_factory) -> dict[str, Path]:
    """Per corpus entry, a copy of a good two-case set whose first case's T1 is that entry's file."""
    good = make_phantom_set(n=2, shape=(16, 16, 16), spacing=8.0, seed=5)
    root = tmp_path_factory.mktemp("bad-jobs")
    first = sorted(p for p in good.iterdir() if p.is_dir())[0]
    array, affine = read_nifti(first / f"{first.name}_t1.nii.gz")
    sets = {}
    for entry in CORPUS:
        folder = root / entry.name / "set"
        shutil.copytree(good, folder)
        target = folder / first.name / f"{first.name}_t1.nii.gz"
        target.unlink()
        entry.write(target, np.asarray(array), affine)
        sets[entry.name] = folder
    return sets


def _refused(client, kind: str, params: dict, bad: Path) -> None:
    with pytest.raises(EngineError) as refused:
        client.submit(kind, params)
    sentence = str(refused.value)
    assert 400 <= (refused.value.status or 0) < 500, f"{kind} {bad}: {refused.value.status} {sentence}"
    assert bad.name in sentence and "Traceback" not in sentence and "\n" not in sentence, f"{kind}: {sentence}"


def test_every_bad_file_is_a_4xx_naming_it(client, bad_sets, tmp_path):
    kinds_seen = {"add-channel": 0, "add-tumour": 0, "export": 0, "finetune": 0}
    jobs_before = len(client.jobs())
    for entry, folder in bad_sets.items():
        case = sorted(p for p in folder.iterdir() if p.is_dir())[0]
        bad = case / f"{case.name}_t1.nii.gz"
        out = str(tmp_path / entry)
        _refused(client, "add-channel", {"case": str(case), "channel": "ct", "out": out, "device": "cpu"}, bad)
        _refused(client, "add-tumour", {"case": str(case), "mask": str(case / f"{case.name}_seg.nii.gz"), "out": out, "device": "cpu"}, bad)
        kinds_seen["add-channel"] += 1
        kinds_seen["add-tumour"] += 1
        try:
            read_header(bad)
        except MedSynthError:  # what a header shows: refused when a set is submitted too
            _refused(client, "export", {"source": str(folder), "out": out}, bad)
            _refused(client, "finetune", {"model": "pgan3d", "data": str(folder), "out": out, "steps": 1, "device": "cpu"}, bad)
            kinds_seen["export"] += 1
            kinds_seen["finetune"] += 1
    assert len(client.jobs()) == jobs_before  # nothing was queued
    assert kinds_seen["add-channel"] == len(CORPUS) >= 40 and kinds_seen["export"] >= 25, kinds_seen
    assert not any(tmp_path.iterdir())
