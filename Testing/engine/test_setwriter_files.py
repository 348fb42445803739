"""The files of one case are written side by side (a one-case run does not compress its channels one after another
on one core), the bytes are those of writing them one by one, and a file that fails to write fails its case
without leaving a file still being written."""

from __future__ import annotations

import errno
import threading
import time

import medsynth_engine.setwriter as setwriter_module
import numpy as np
import pytest
from medsynth_engine.contract import SynthCase
from medsynth_engine.nifti_io import write_nifti
from medsynth_engine.setwriter import SetWriter

CHANNELS = ("t1", "t2", "flair", "seg")


def _case() -> SynthCase:
    rng = np.random.default_rng(4)
    arrays = {c: rng.integers(0, 3000, size=(12, 10, 8)).astype(np.int16) for c in CHANNELS[:-1]}
    arrays["seg"] = rng.choice(np.array([0, 1, 2, 4], dtype=np.uint8), size=(12, 10, 8))
    return SynthCase(arrays=arrays, affine=np.diag([2.0, 2.0, 2.0, 1.0]), params={"note": "test"})


def _write_one_case(out, monkeypatch, write) -> dict:
    monkeypatch.setattr(setwriter_module, "write_nifti", write)
    with SetWriter(out, "brats", CHANNELS, workers=2, id_key="files-test", cases=1) as writer:
        writer.add(_case(), seed=1, index=0)
        writer.drain()
        return writer.journal.entries()[0]


def test_the_files_of_one_case_are_written_side_by_side_with_the_bytes_of_one_by_one(tmp_path, monkeypatch):
    active, most = [0], [0]
    lock = threading.Lock()

    def slow_write(path, array, affine):
        with lock:
            active[0] += 1
            most[0] = max(most[0], active[0])
        time.sleep(0.2)  # a slow disk: long enough for the other file thread to start
        try:
            return write_nifti(path, array, affine)
        finally:
            with lock:
                active[0] -= 1

    entry = _write_one_case(tmp_path / "set", monkeypatch, slow_write)
    assert most[0] == 2  # two file threads at once, never more than the writer's workers
    case = _case()
    for channel, rel in entry["files"].items():  # each file as the plain writer makes it alone
        alone = write_nifti(tmp_path / f"alone_{channel}.nii.gz", case.arrays[channel], case.affine)
        assert entry["sha256"][rel] == alone


def test_a_file_that_fails_fails_its_case_and_no_file_is_left_being_written(tmp_path, monkeypatch):
    finished_after_failure = []

    def failing_write(path, array, affine):
        if path.name.endswith("_t2.nii.gz"):
            raise OSError(errno.ENOSPC, "No space left on device")
        time.sleep(0.1)
        digest = write_nifti(path, array, affine)
        finished_after_failure.append(path.name)
        return digest

    with pytest.raises(OSError, match="No space left"):
        _write_one_case(tmp_path / "set", monkeypatch, failing_write)
    # nothing was journalled and no file thread wrote after the case failed (the writer waits for them)
    written = sorted(p.name for p in tmp_path.rglob("*.nii.gz"))
    time.sleep(0.3)
    assert sorted(p.name for p in tmp_path.rglob("*.nii.gz")) == written
    assert not list(tmp_path.rglob(".*.partial"))  # no half-written file under a temporary name
    assert not (tmp_path / "set").exists()
