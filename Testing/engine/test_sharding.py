"""Generation across processes: `--nproc 2` and `torchrun --nproc_per_node 2` (gloo) give exactly the files of one
process, manifest included; a worker killed mid-run fails the run in one sentence, with no set and no folder left."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from medsynth_engine.cli import main
from medsynth_engine.errors import MedSynthError
from medsynth_engine.journal import temporary_folder
from medsynth_engine.sharding import World

RUN = ["generate", "-n", "4", "--seed", "5", "--channels", "t1,seg", "--shape", "32", "--spacing", "6"]
TORCHRUN = Path(sys.executable).parent / "torchrun"


def checksums(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.slow  # real worker processes
def test_two_processes_and_torchrun_give_the_files_of_one_process(tmp_path, capsys):
    assert main([*RUN, "--out", str(tmp_path / "one"), "--quiet"]) == 0
    one = checksums(tmp_path / "one")
    assert "manifest.json" in one and len(one) == 1 + 4 * 2  # the manifest holds no time, host or run id: all must match

    nproc = subprocess.run([sys.executable, "-m", "medsynth_engine.cli", *RUN, "--out", str(tmp_path / "nproc"), "--nproc", "2"],
                           capture_output=True, text=True, timeout=300)
    assert nproc.returncode == 0, nproc.stderr
    assert checksums(tmp_path / "nproc") == one
    assert "2 worker processes" in nproc.stderr and "4/4" in nproc.stderr and "/h" in nproc.stderr  # one line: count, rate

    torchrun = subprocess.run([str(TORCHRUN), "--standalone", "--nproc_per_node", "2", "-m", "medsynth_engine.cli", *RUN,
                               "--out", str(tmp_path / "torchrun")], capture_output=True, text=True, timeout=300)
    assert torchrun.returncode == 0, torchrun.stderr
    assert checksums(tmp_path / "torchrun") == one
    assert torchrun.stdout.count("Wrote 4 case(s)") == 1  # rank 0 speaks for the run
    assert not list(tmp_path.glob(".*"))  # no temporary folder left


@pytest.mark.slow
def test_a_killed_worker_fails_the_run_cleanly(tmp_path):
    out = tmp_path / "set"
    parent = subprocess.Popen([sys.executable, "-m", "medsynth_engine.cli", *RUN[:2], "40", *RUN[3:-4], "--shape", "16", "--spacing", "9", "--out", str(out),
                               "--nproc", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cases = temporary_folder(out) / "journal" / "cases"
    deadline = time.monotonic() + 240
    while not (cases.is_dir() and any(cases.glob("*.json"))):
        assert parent.poll() is None and time.monotonic() < deadline, f"no case was written: {parent.communicate()[1]}"
        time.sleep(0.2)
    worker = next(p for p in psutil.Process(parent.pid).children() if p.environ().get("RANK") == "1")
    os.kill(worker.pid, signal.SIGKILL)
    _, stderr = parent.communicate(timeout=120)
    assert parent.returncode == 2
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert errors == ["medsynth: error: Worker 1 of 2 died (SIGKILL); nothing was published and the unfinished set was removed."]
    assert not out.exists() and not temporary_folder(out).exists()


@pytest.mark.parametrize("size", [1, 2, 3, 8])
def test_the_shares_of_all_workers_are_the_missing_cases_once_each(size):
    missing = [0, 2, 3, 5, 6, 7, 11]  # a resumed run: the others were kept
    shares = [World(rank, size).share(missing) for rank in range(size)]
    assert sorted(i for share in shares for i in share) == missing
    assert max(map(len, shares)) - min(map(len, shares)) <= 1  # balanced over what is left, not over all indices


def test_the_world_comes_from_torchrun_variables_and_bad_ones_are_one_sentence():
    assert World.from_env({}) == World(0, 1, 0)
    assert World.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1"}) == World(3, 4, 1)
    assert World(1, 2, 1).device("cpu") == "cpu" and World(0, 1).device(None) is None
    with pytest.raises(MedSynthError, match="RANK 4 and WORLD_SIZE 4"):
        World.from_env({"RANK": "4", "WORLD_SIZE": "4"})
    with pytest.raises(MedSynthError, match="whole numbers"):
        World.from_env({"RANK": "one", "WORLD_SIZE": "2"})


def test_bad_multi_process_requests_are_one_sentence_before_any_worker_starts(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main([*RUN, "--out", str(tmp_path / "a"), "--nproc", "2"]) == 2
    assert "--nproc_per_node" in capsys.readouterr().err
    monkeypatch.delenv("WORLD_SIZE")
    monkeypatch.delenv("RANK")
    assert main(["generate", "--balance", "size", "-n", "4", "--out", str(tmp_path / "b"), "--nproc", "2"]) == 2
    assert "Cohort runs" in capsys.readouterr().err
    assert main([*RUN, "--out", str(tmp_path / "c"), "--nproc", "0"]) == 2
    assert "--nproc must be at least 1" in capsys.readouterr().err
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert main([*RUN, "--out", str(tmp_path / "full"), "--nproc", "2"]) == 2  # said once, before any worker starts
    assert capsys.readouterr().err.count("is not empty") == 1
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full"]


def test_the_engines_gpus_option_names_devices_this_machine_has():
    import torch
    from medsynth_engine.sharding import parse_devices

    assert parse_devices("cpu, cpu") == ("cpu", "cpu")
    with pytest.raises(MedSynthError, match="--gpus takes"):
        parse_devices("cpu,,cpu")
    if not torch.cuda.is_available():
        with pytest.raises(MedSynthError, match="no CUDA GPU"):
            parse_devices("0,1")
    else:
        assert parse_devices("0") == ("cuda:0",)
