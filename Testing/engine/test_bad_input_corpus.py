"""Every broken NIfTI of the corpus (bad_nifti_corpus.py) through every command that reads user files.

finetune, add-channel, add-tumour, audit, evaluate and export each get each bad file as a case's T1: one
sentence on stderr naming the file, exit 2, no traceback, the input folder unchanged, and nothing in the
output (no folder, no temporary sibling). The commands run in-process through the CLI's ``main`` (a process
per file would take minutes); the issue's three reported failures also run as real ``medsynth`` subprocesses.
"""

from __future__ import annotations

import hashlib
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bad_nifti_corpus import CORPUS, GRID_ENTRIES
from medsynth_engine.cli import main
from medsynth_engine.errors import MedSynthError
from medsynth_engine.nifti_io import read_nifti

pytestmark = pytest.mark.slow

MEDSYNTH_BIN = Path(sys.executable).parent / "medsynth"

COMMANDS = ("finetune", "add-channel", "add-tumour", "audit", "evaluate", "export")
#: The issue's reported failures, each also through a real ``medsynth`` subprocess (every command already runs every
#: entry in-process through the same ``main``; a process per command cost six torch imports on two cores).
SUBPROCESS_ENTRY = {"finetune": "pixdim-all-zero", "add-channel": "rgb24", "add-tumour": "complex64"}


@pytest.fixture(scope="module")
def corpus(make_phantom_set, tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """The good set, and per entry a copy of it whose first case's T1 is that entry's bad file."""
    good = make_phantom_set(n=2, shape=(16, 16, 16), spacing=8.0, seed=5)
    root = tmp_path_factory.mktemp("corpus")
    first = sorted(p for p in good.iterdir() if p.is_dir())[0]
    t1 = first / f"{first.name}_t1.nii.gz"
    array, affine = read_nifti(t1)
    sets = {}
    for entry in CORPUS:
        folder = root / entry.name / "set"
        shutil.copytree(good, folder)
        target = folder / first.name / t1.name
        target.unlink()
        entry.write(target, np.asarray(array), affine)
        sets[entry.name] = folder
    return good, sets


def _argv(command: str, good: Path, bad_set: Path, out: Path) -> list[str]:
    case = sorted(p for p in bad_set.iterdir() if p.is_dir())[0]
    return {
        "finetune": ["finetune", "--model", "pgan3d", "--data", str(bad_set), "--out", str(out), "--steps", "1",
                     "--resolution", "8", "--device", "cpu", "--quiet"],
        "add-channel": ["add-channel", "--channel", "seg", "--case", str(case), "--out", str(out), "--device", "cpu"],
        "add-tumour": ["add-tumour", "--case", str(case), "--mask", str(case / f"{case.name}_seg.nii.gz"), "--out", str(out),
                       "--device", "cpu", "--quiet"],
        "audit": ["audit", "--synthetic", str(bad_set), "--train", str(good), "--quiet"],
        "evaluate": ["evaluate", "--synthetic", str(bad_set), "--real", str(good), "--out", str(out), "--quiet"],
        "export": ["export", "--source", str(bad_set), "--out", str(out), "--quiet"],
    }[command]


def _snapshot(folder: Path) -> dict[str, tuple]:
    """Every entry under ``folder`` (links not followed): type, size, and the content hash of regular files."""
    seen = {}
    for path in sorted(folder.rglob("*")):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if stat.S_ISREG(info.st_mode) else ""
        seen[str(path.relative_to(folder))] = (stat.S_IFMT(info.st_mode), info.st_size if digest else 0, digest)
    return seen


def _check(entry: str, command: str, code: int, err: str, bad_set: Path, before: dict, out: Path) -> None:
    case = sorted(p for p in bad_set.iterdir() if p.is_dir())[0]
    where = f"{entry} via {command}"
    assert code == 2, f"{where}: exit {code}, stderr {err!r}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("medsynth: error: "), f"{where}: {err!r}"
    assert f"{case.name}_t1.nii.gz" in err and entry in err, f"{where} does not name the file: {err!r}"
    assert "Traceback" not in err
    assert _snapshot(bad_set.parent) == before, f"{where} changed the input folder or left something beside it"
    assert not out.exists()


def test_every_bad_file_is_one_sentence_through_every_command(corpus, capsys):
    good, sets = corpus
    assert len(sets) >= 40
    for entry, bad_set in sets.items():
        before = _snapshot(bad_set.parent)
        for command in COMMANDS:
            out = bad_set.parent / f"out-{command}"
            code = main(_argv(command, good, bad_set, out))
            captured = capsys.readouterr()
            _check(entry, command, code, captured.err, bad_set, before, out)


def test_the_reported_failures_are_refused_by_a_real_process(corpus):
    """One real ``medsynth`` process per reported failure (run side by side: each spends seconds importing torch)."""
    good, sets = corpus
    runs = {}
    for command in SUBPROCESS_ENTRY:
        bad_set = sets[SUBPROCESS_ENTRY[command]]
        out = bad_set.parent / f"out-{command}-process"
        before = _snapshot(bad_set.parent)
        process = subprocess.Popen([str(MEDSYNTH_BIN), *_argv(command, good, bad_set, out)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        runs[command] = (process, bad_set, out, before)
    for command, (process, bad_set, out, before) in runs.items():
        stdout, stderr = process.communicate(timeout=500)  # a loaded machine: each spends seconds importing torch
        _check(SUBPROCESS_ENTRY[command], command, process.returncode, stderr, bad_set, before, out)
        assert stdout == ""


def test_only_the_grid_entries_are_readable_alone(corpus):
    """The corpus is what it says: every entry but the grid ones is refused by the reader on its own."""
    _, sets = corpus
    for entry, bad_set in sets.items():
        case = sorted(p for p in bad_set.iterdir() if p.is_dir())[0]
        path = case / f"{case.name}_t1.nii.gz"
        if entry in GRID_ENTRIES:
            read_nifti(path)
        else:
            with pytest.raises(MedSynthError, match=str(path).replace(".", r"\.")):
                read_nifti(path)
