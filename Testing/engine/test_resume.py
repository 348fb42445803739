"""Interrupted batch runs continue: `medsynth generate --resume` after SIGKILL gives the files of an uninterrupted
run; different arguments are refused; the temporary folder is never taken for a set; `clean` and `--discard`."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from medsynth_engine.cli import main
from medsynth_engine.errors import MedSynthError
from medsynth_engine.generate import GenerateRequest, generate_set
from medsynth_engine.journal import case_id, temporary_folder
from medsynth_engine.setexport import export_set

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

RUN = ["generate", "-n", "6", "--seed", "7", "--channels", "t1,flair,seg", "--shape", "16", "--spacing", "9"]


def checksums(folder: Path) -> dict[str, str]:
    """SHA-256 of every file under ``folder``, by relative path."""
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def journalled(out: Path) -> list[dict]:
    cases = temporary_folder(out) / "journal" / "cases"
    return [json.loads(p.read_text()) for p in sorted(cases.glob("*.json"))] if cases.is_dir() else []


def _interrupted(out: Path, registry, after: int = 1, **changes) -> None:
    """A run of RUN's arguments stopped by Ctrl-C after ``after`` finished cases."""

    def stop(done: int, total: int) -> None:
        if done == after:
            raise KeyboardInterrupt

    fields = {"model": "phantom", "n": 6, "seed": 7, "out": out, "channels": "t1,flair,seg", "shape": (16,) * 3, "spacing": (9.0,) * 3}
    request = GenerateRequest(**{**fields, **changes})
    with pytest.raises(KeyboardInterrupt):
        generate_set(request, registry, progress=stop)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, registry) -> Path:
    out = tmp_path_factory.mktemp("whole") / "set"
    assert main([*RUN, "--out", str(out), "--quiet"]) == 0
    return out


@pytest.mark.slow
def test_sigkill_after_two_cases_then_resume_gives_the_files_of_an_uninterrupted_run(tmp_path, uninterrupted, capsys):
    out = tmp_path / "set"
    proc = subprocess.Popen([sys.executable, "-m", "medsynth_engine.cli", *RUN, "--out", str(out), "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while len(journalled(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(30)
    finished = journalled(out)
    assert 2 <= len(finished) < 6 and not out.exists(), "killed after two complete cases, before the set was published"

    tmp_set = temporary_folder(out) / "set"
    damaged = tmp_set / next(iter(finished[0]["files"].values()))
    damaged.write_bytes(damaged.read_bytes()[:-10])  # a finished case whose file changed since: made again
    unfinished = case_id("generate:7", 5)  # a half-written case: files without a record
    (tmp_set / unfinished).mkdir(exist_ok=True)
    (tmp_set / unfinished / f"{unfinished}_t1.nii.gz").write_bytes(b"half")
    (tmp_set / unfinished / f".{unfinished}_flair.nii.gz.partial").write_bytes(b"half")

    assert main([*RUN, "--out", str(out), "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"{len(finished) - 1} of 6 case(s) were already complete" in err
    assert checksums(out) == checksums(uninterrupted), "a resumed run writes exactly the files of an uninterrupted one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"], "the temporary folder is gone once the set is published"


def test_case_ids_derive_from_the_seed_and_index_only(uninterrupted):
    manifest = json.loads((uninterrupted / "manifest.json").read_text())
    assert {c["id"] for c in manifest["cases"]} == {case_id("generate:7", i) for i in range(6)}
    assert len({case_id("k", i) for i in range(50_000)}) == 50_000, "a keyed permutation: ids of one run never collide"


def test_a_different_seed_is_refused_in_one_sentence_and_the_journal_is_kept(tmp_path, registry, capsys):
    out = tmp_path / "set"
    _interrupted(out, registry)
    kept = checksums(temporary_folder(out))
    assert main([*RUN[:4], "8", *RUN[5:], "--out", str(out), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--seed was 7, now 8" in err and str(out) in err
    assert main([*RUN, "--out", str(out)]) == 2, "a leftover is refused without --resume or --discard"
    assert "--resume" in capsys.readouterr().err
    assert checksums(temporary_folder(out)) == kept and not out.exists()


def test_the_temporary_folder_is_never_taken_for_a_set(tmp_path, registry):
    out = tmp_path / "set"
    _interrupted(out, registry)
    inside = temporary_folder(out) / "set"
    (inside / "manifest.json").write_text(json.dumps({"format": "medsynth-synthetic-set", "layout": "brats", "cases": [], "channels": []}))
    with pytest.raises(MedSynthError, match="temporary folder of an unfinished run"):
        export_set(inside, tmp_path / "copy")
    with pytest.raises(MedSynthError, match="temporary folder of an unfinished run"):
        generate_set(GenerateRequest(model="phantom", n=1, seed=0, out=inside / "x"), registry)


@pytest.mark.slow
def test_discard_and_clean_remove_the_leftover(tmp_path, registry, capsys):
    out = tmp_path / "set"
    _interrupted(out, registry)
    assert main(["clean", str(out)]) == 0
    assert "1 finished case(s)" in capsys.readouterr().out and list(tmp_path.iterdir()) == []
    assert main(["clean", str(out)]) == 0 and "Nothing to clean" in capsys.readouterr().out
    _interrupted(out, registry, channels="t1")
    assert main([*RUN, "--out", str(out), "--discard", "--quiet"]) == 0, "--discard starts afresh with new arguments"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]
    assert json.loads((out / "manifest.json").read_text())["channels"] == ["t1", "flair", "seg"]


def test_an_interrupted_export_resumes_with_its_ids_and_refuses_other_channels(make_phantom_set, tmp_path, capsys):
    source = make_phantom_set(n=2)
    out = tmp_path / "shared"

    def stop(done: int, total: int) -> None:
        if done == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_set(source, out, layout="nnunet", progress=stop)
    first_id = journalled(out)[0]["id"]
    assert main(["export", "--source", str(source), "--out", str(out), "--layout", "nnunet", "--channels", "t1,seg", "--resume"]) == 2
    assert "--channels was" in capsys.readouterr().err
    kept = []
    export_set(source, out, layout="nnunet", resume=True, resumed=lambda done, total: kept.append(done))
    manifest = json.loads((out / "manifest.json").read_text())
    source_cases = json.loads((source / "manifest.json").read_text())["cases"]
    assert kept == [1] and first_id in {c["id"] for c in manifest["cases"]}, "the interrupted run's ids are kept"
    assert sorted(c["seed"] for c in manifest["cases"]) == sorted(c["seed"] for c in source_cases)
    assert len({c["id"] for c in manifest["cases"]}) == 2 and not {c["id"] for c in manifest["cases"]} & {c["id"] for c in source_cases}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shared"]
