"""generate and export refuse, before the first case, a set the file system cannot hold.

The file system's free space is the one thing faked (``diskspace.disk_usage``, where MedSynth asks it): the
commands, their writers and the folders are real.
"""

from __future__ import annotations

import shutil
from collections import namedtuple

import pytest
from medsynth_engine import diskspace
from medsynth_engine.cli import main

pytestmark = pytest.mark.slow

Usage = namedtuple("Usage", "total used free")
GENERATE = ["generate", "--model", "phantom", "-n", "2", "--shape", "16", "--spacing", "8", "--device", "cpu", "--quiet"]


def _free(monkeypatch, free: int) -> list[str]:
    asked: list[str] = []

    def usage(path):
        asked.append(str(path))
        return Usage(10 * free + (1 << 30), 0, free)

    monkeypatch.setattr(diskspace, "disk_usage", usage)
    return asked


def test_generate_refuses_a_set_the_disk_cannot_hold_and_writes_nothing(tmp_path, monkeypatch, capsys):
    asked = _free(monkeypatch, diskspace.RESERVE_BYTES)  # the reserve alone: no room for any case
    assert main([*GENERATE, "--out", str(tmp_path / "set")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"medsynth: error: {tmp_path / 'set'} needs about ") and "free; free some space" in err
    assert err.count("\n") == 1
    assert asked == [str(tmp_path)]  # the existing folder on the target's file system
    assert list(tmp_path.iterdir()) == []  # no set, no temporary folder


def test_generate_goes_ahead_when_the_estimate_fits(tmp_path, monkeypatch, capsys):
    needed = 2 * diskspace.case_bytes((16, 16, 16), ("t1", "t1ce", "t2", "flair", "seg"))
    _free(monkeypatch, int(needed * diskspace.MARGIN) + diskspace.RESERVE_BYTES + 1)
    assert main([*GENERATE, "--out", str(tmp_path / "set")]) == 0
    written = sum(p.stat().st_size for p in (tmp_path / "set").rglob("*.nii.gz"))
    assert written <= needed  # the estimate is an upper bound for the phantom's cases
    _free(monkeypatch, int(needed * diskspace.MARGIN) + diskspace.RESERVE_BYTES - 1)
    assert main([*GENERATE, "--out", str(tmp_path / "again")]) == 2
    assert not (tmp_path / "again").exists() and not (tmp_path / ".again.partial").exists()


def test_export_refuses_from_the_source_size_and_writes_nothing(make_phantom_set, tmp_path, monkeypatch, capsys):
    source = shutil.copytree(make_phantom_set(n=2, shape=(16, 16, 16), spacing=8.0), tmp_path / "source")
    size = sum(p.stat().st_size for p in source.rglob("*.nii.gz"))
    _free(monkeypatch, int(size * diskspace.MARGIN) + diskspace.RESERVE_BYTES - 1)
    before = sorted((p.relative_to(tmp_path), p.stat().st_mtime_ns) for p in tmp_path.rglob("*"))
    assert main(["export", "--source", str(source), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    assert "needs about" in capsys.readouterr().err
    assert sorted((p.relative_to(tmp_path), p.stat().st_mtime_ns) for p in tmp_path.rglob("*")) == before
    _free(monkeypatch, int(size * diskspace.MARGIN) + diskspace.RESERVE_BYTES + 64)
    assert main(["export", "--source", str(source), "--out", str(tmp_path / "out"), "--quiet"]) == 0


def test_a_cohort_run_refuses_from_its_total_and_writes_nothing(tmp_path, monkeypatch, capsys):
    """A cohort run (here --balance over two strata) is estimated from its strata's total, like any set."""
    needed = 4 * diskspace.case_bytes((16, 16, 16), ("t1", "t1ce", "t2", "flair", "seg"))
    asked = _free(monkeypatch, int(needed * diskspace.MARGIN) + diskspace.RESERVE_BYTES - 1)
    cohort = ["generate", "--model", "phantom", "--balance", "hemisphere", "-n", "4", "--shape", "16", "--spacing", "8", "--device", "cpu", "--quiet"]
    assert main([*cohort, "--out", str(tmp_path / "set")]) == 2
    assert "needs about" in capsys.readouterr().err and asked == [str(tmp_path)]
    assert list(tmp_path.iterdir()) == []
