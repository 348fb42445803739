"""SIGKILL at every named kill point of fine-tune, generate, export, add-channel, add-tumour, prepare and the engine's
job store, with the real commands in child processes (``killpoints.py``). After each kill the output is absent, the
previous complete version or a complete new one (every visible file whole, no temporary under a visible name); a
killed fine-tune has lost at most one checkpoint interval, and resumed to its end it matches an uninterrupted run
exactly (weights and loss log).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from killpoints import KILLED, Commands, published_files_intact, visible_files
from medsynth_engine.killpoint import POINTS
from medsynth_engine.modelfile import load_model_folder
from medsynth_engine.registry import default_registry

from MedSynthLib.client import EngineClient, EngineError

pytestmark = pytest.mark.slow

STEPS, EVERY = 4, 2  # checkpoints at steps 2 and 4
TINY = ["--resolution", "16", "--width", "8", "--batch-size", "2", "--seed", "3", "--log-every", "1"]
FAMILY_ARGS = {
    "pgan3d": ["--resolution", "8"],
    "ldm3d": ["--stage", "autoencoder"],
    "mr2ct": ["--width", "4", "--spacing", "6"],
    "dcgan2d": ["--resolution", "32", "--width", "16", "--batch-size", "4", "--slices-per-case", "6", "--spacing", "6"],
    "stylegan2d": ["--resolution", "32", "--width", "16", "--slices-per-case", "3", "--spacing", "6", "--mapping-layers", "2"],
}
#: Where each family is killed: (point, the step it is killed in, the checkpoint's step after the kill). The points of
#: the shared training code rotate over the families, so each family meets one and each point is met: mid-step (step
#: 3 trained, or logged), in the step-4 checkpoint before its state is committed, or just after.
FAMILY_POINT = {
    "dcgan2d": ("finetune.step:3", 3, 2), "l2i3d": ("checkpoint.weights:2", 4, 2), "ldm3d": ("model.weights:2", 4, 2),
    "mr2ct": ("finetune.logged:3", 3, 2), "pgan3d": ("checkpoint.state:2", 4, 4), "seg": ("model.card:2", 4, 2),
    "stylegan2d": ("finetune.logged:3", 3, 2),
}
FAMILIES = sorted(f.name for f in default_registry().families() if f.trainer)
SET_POINTS = {"generate": ["set.case-files:2", "set.published"], "export": ["set.case-recorded:2", "set.manifest"]}
ADD_CHANNEL_POINTS = ["add-channel.written", "add-channel.renamed:1"]
ADD_TUMOUR_POINT = "add-tumour.written"
PREPARE_POINTS = ["prepare.case:1", "prepare.written"]
ENGINE_POINTS = ["jobs.folder", "jobs.task", "jobs.created", "jobs.running", "jobs.ended"]


@pytest.fixture(scope="module")
def commands(tmp_path_factory):
    return Commands(tmp_path_factory.mktemp("kill-logs"))


@pytest.fixture(scope="module")
def data(make_phantom_set):
    return make_phantom_set(n=4, shape=(24, 24, 24), spacing=6.0, channels="t1,t1ce,t2,flair,seg,ct", seed=61)


def _killed(commands: Commands, argv: list[str], point: str) -> None:
    _was_killed(point, *commands.run(argv, point))


def _was_killed(point: str, code: int, log: str) -> None:
    assert code == KILLED, f"{point} was not reached (exit {code}):\n{log}"


def _state_step(out: Path) -> int:
    return json.loads((out / "checkpoint" / "state.json").read_text())["step"]


def _losses(out: Path) -> list[dict]:
    return [{k: v for k, v in json.loads(line).items() if k != "time"} for line in (out / "loss.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("family", FAMILIES)
def test_a_killed_fine_tune_loses_at_most_one_interval_and_resumes_to_the_same_model(family, commands, data, tmp_path):
    assert family in FAMILY_POINT, f"give the new family {family} its kill point here"
    argv = ["finetune", "--model", family, "--data", str(data), "--steps", str(STEPS), "--checkpoint-every", str(EVERY),
            "--device", "cpu", "--quiet", *TINY, *FAMILY_ARGS.get(family, [])]
    out = tmp_path / "killed"
    point, killed_at, kept = FAMILY_POINT[family]
    (code, log), killed = commands.run_together([([*argv, "--out", str(tmp_path / "straight")], None), ([*argv, "--out", str(out)], point)])
    assert code == 0, log
    _was_killed(point, *killed)
    published_files_intact(out)
    assert _state_step(out) == kept and killed_at - kept <= EVERY  # at most one checkpoint interval lost
    load_model_folder(out)  # a usable model: its card matches its weights
    code, log = commands.run([*argv, "--out", str(out), "--resume"])
    assert code == 0, log
    published_files_intact(out)
    _, straight = load_model_folder(tmp_path / "straight")
    _, resumed = load_model_folder(out)
    assert straight.keys() == resumed.keys() and all(torch.equal(straight[k], resumed[k]) for k in straight)
    assert _losses(out) == _losses(tmp_path / "straight") and [e["step"] for e in _losses(out)] == list(range(1, STEPS + 1))


def _set_files(folder: Path) -> list[str]:
    """The set's content, case ids aside: the sorted SHA-256 of its NIfTI files."""
    return sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in visible_files(folder) if p.name.endswith(".nii.gz"))


def _complete_set(folder: Path, cases: int) -> None:
    published_files_intact(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    assert len(manifest["cases"]) == cases
    assert all((folder / rel).is_file() for case in manifest["cases"] for rel in case["files"].values())


@pytest.mark.parametrize(("command", "points"), SET_POINTS.items())
def test_a_killed_set_is_absent_or_complete_and_resumes(command, points, commands, make_phantom_set, tmp_path):
    """The set generate writes here is the one ``make_phantom_set`` made with the same arguments (the source to export)."""
    source = make_phantom_set(n=3, shape=(16, 16, 16), spacing=9.0, channels="t1,flair,seg", seed=8)
    if command == "generate":
        argv = ["generate", "-n", "3", "--seed", "8", "--shape", "16", "--spacing", "9", "--channels", "t1,flair,seg", "--device", "cpu"]
        runs = []
    else:
        argv = ["export", "--source", str(source), "--layout", "nnunet"]
        runs = [([*argv, "--quiet", "--out", str(tmp_path / "straight")], None)]
    outs = [tmp_path / f"killed{n}" for n in range(len(points))]
    results = commands.run_together([*runs, *(([*argv, "--quiet", "--out", str(out)], point) for out, point in zip(outs, points, strict=True))])
    if runs:
        assert results.pop(0)[0] == 0
    expected = _set_files(source if command == "generate" else tmp_path / "straight")
    for out, point, result in zip(outs, points, results, strict=True):
        _was_killed(point, *result)
        if out.exists():  # published before the kill: complete, and a later resume has nothing to do
            _complete_set(out, 3)
        else:
            code, log = commands.run([*argv, "--quiet", "--out", str(out), "--resume"])
            assert code == 0, log
        _complete_set(out, 3)
        assert _set_files(out) == expected


def test_a_killed_add_channel_leaves_the_case_as_it_was(commands, make_phantom_set, tmp_path):
    source = make_phantom_set(n=1, shape=(24, 24, 24), spacing=6.0, channels="t1,t1ce,t2,flair", seed=9)
    original = next(p for p in source.iterdir() if p.is_dir())
    case = tmp_path / original.name
    shutil.copytree(original, case)
    before = {p.name: p.read_bytes() for p in case.iterdir()}
    argv = ["add-channel", "--case", str(case), "--channel", "seg", "--device", "cpu"]
    for point in ADD_CHANNEL_POINTS:
        _killed(commands, argv, point)
        published_files_intact(case)
        assert {p.name: p.read_bytes() for p in case.iterdir() if p.name in before} == before
        assert not any(p.name.endswith("_seg.nii.gz") for p in case.iterdir())  # the NIfTI is renamed last
    code, log = commands.run(argv)
    assert code == 0, log
    seg = {p.name: p.read_bytes() for p in case.iterdir() if "_seg." in p.name}
    assert sorted(seg) == [f"{case.name}_seg.nii.gz", f"{case.name}_seg.seg.nrrd"] and not list(case.glob(".*"))
    _killed(commands, [*argv, "--replace"], "add-channel.renamed:1")  # replacing: the old NIfTI stays until the new one is whole
    assert (case / f"{case.name}_seg.nii.gz").read_bytes() == seg[f"{case.name}_seg.nii.gz"]
    published_files_intact(case)


def test_a_killed_add_tumour_writes_no_case_and_runs_again(commands, make_phantom_set, tmp_path):
    source = make_phantom_set(n=1, shape=(24, 24, 24), spacing=6.0, channels="t1,t1ce,t2,flair,seg", seed=10)
    case = next(p for p in source.iterdir() if p.is_dir())
    argv = ["add-tumour", "--case", str(case), "--mask", str(case / f"{case.name}_seg.nii.gz"), "--out", str(tmp_path / "o"),
            "--device", "cpu", "--quiet"]
    _killed(commands, argv, ADD_TUMOUR_POINT)
    assert visible_files(tmp_path / "o") == []
    code, log = commands.run(argv)  # the same command again, into the same folder
    assert code == 0, log
    assert len(published_files_intact(tmp_path / "o")) == 5 and not list((tmp_path / "o").glob(".*"))


def test_a_killed_prepare_publishes_nothing_and_runs_again(commands, make_phantom_set, tmp_path):
    source = make_phantom_set(n=2, shape=(24, 24, 24), spacing=6.0, channels="t1,t1ce,t2,flair", seed=11)
    argv = ["prepare", "--input", str(source), "--out", str(tmp_path / "o"), "--atlas", "none", "--skull-strip", "none", "--spacing", "4"]
    for point in PREPARE_POINTS:
        _killed(commands, argv, point)
        assert not (tmp_path / "o").exists()
    code, log = commands.run(argv)
    assert code == 0, log
    assert len([p for p in published_files_intact(tmp_path / "o") if p.name.endswith("_t1.nii.gz")]) == 2


@pytest.mark.parametrize("point", ENGINE_POINTS)
def test_a_killed_engine_keeps_every_job_whole(point, commands, tmp_path):
    """The engine dies at a point of the job store; restarted, it has the job whole (it finishes) or not at all."""
    state, out = tmp_path / "state", tmp_path / "set"
    engine, url = commands.engine(state, tmp_path, point)
    client = EngineClient(url, token_file=state / "engine.token", timeout=30)
    try:
        client.submit("generate", {"n": 2, "seed": 3, "shape": 16, "spacing": 9, "channels": "t1,seg", "out": str(out)})
    except EngineError:
        pass  # the engine died before it answered
    engine.join(60)
    assert engine.exitcode == KILLED
    engine, url = commands.engine(state, tmp_path)
    try:
        client = EngineClient(url, token_file=state / "engine.token", timeout=30)
        jobs = client.jobs()
        assert len(jobs) <= 1 and sorted(p.name for p in (state / "jobs").iterdir()) == [j["id"] for j in jobs]
        for job in jobs:
            job = client.wait(job["id"], poll=0.2, timeout=120)
            if job["state"] == "interrupted":
                job = client.wait(client.resume(job["id"])["id"], poll=0.2, timeout=120)
            assert job["state"] == "succeeded", job
            _complete_set(out, 2)
        if not jobs:
            assert not out.exists()
    finally:
        engine.terminate()
        engine.join(30)


def test_every_kill_point_is_killed_at():
    """The tests above kill at every point the engine declares (each kill asserts that its point was reached)."""
    used = [p[0] for p in FAMILY_POINT.values()] + [p for points in SET_POINTS.values() for p in points]
    used += [*ADD_CHANNEL_POINTS, ADD_TUMOUR_POINT, *PREPARE_POINTS, *ENGINE_POINTS]
    assert {p.partition(":")[0] for p in used} == set(POINTS) and len(POINTS) >= 20
