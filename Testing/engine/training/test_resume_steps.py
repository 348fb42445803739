"""``--resume --steps N`` for every trainable family: N above the steps done extends the run; N at or below says so
in one sentence and trains nothing (exit 0). Real training steps at tiny sizes.

The families come from the registry, so a new family is tested here as soon as it is installed (with ``TINY``'s
defaults unless it is listed).
"""

from __future__ import annotations

import hashlib
import json

import pytest
from medsynth_engine.cli import main
from medsynth_engine.registry import default_registry
from medsynth_engine.training.finetune import FinetuneRequest, run_finetune

pytestmark = pytest.mark.slow

DEFAULT = dict(resolution=16, width=8, batch_size=2, seed=3, checkpoint_every=2, log_every=1)  # a checkpoint at step 2, where the run stops
TINY = {
    "pgan3d": dict(DEFAULT, resolution=8),
    "ldm3d": dict(DEFAULT, stage="autoencoder"),  # --stage: extend the stage, not start the next one
    "mr2ct": dict(DEFAULT, width=4, spacing=6.0),
    "dcgan2d": dict(DEFAULT, resolution=32, width=16, batch_size=4, slices_per_case=6, spacing=6.0),
    "stylegan2d": dict(DEFAULT, resolution=32, width=16, slices_per_case=3, spacing=6.0, mapping_layers=2),
}
FAMILIES = sorted(f.name for f in default_registry().families() if f.trainer)


def _fingerprint(folder) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def _steps_logged(folder) -> list[int]:
    return [json.loads(line)["step"] for line in (folder / "loss.jsonl").read_text().splitlines()]


def test_the_trained_families_are_all_here():
    assert {"pgan3d", "ldm3d", "seg", "mr2ct", "dcgan2d"} <= set(FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
def test_resume_with_more_steps_extends_and_with_fewer_trains_nothing(family, make_phantom_set, tmp_path):
    data = make_phantom_set(n=4, shape=(24, 24, 24), spacing=6.0, channels="t1,t1ce,t2,flair,seg,ct", seed=61)
    settings = dict(TINY.get(family, DEFAULT), model=family, data=data, out=tmp_path / "m")
    out = run_finetune(FinetuneRequest.make(steps=2, **settings))
    assert _steps_logged(out) == [1, 2]
    before = _fingerprint(out)
    for asked in (2, 1, None):  # at, below, and the run's own count: nothing to train, in one sentence
        said: list[dict] = []
        assert run_finetune(FinetuneRequest.make(steps=asked, resume=True, **settings), progress=said.append) == out
        assert [p["message"] for p in said] == [
            f"The run in {out} has already trained 2 steps, as many as "
            f"{'it was started with' if asked is None else f'--steps {asked} asks'}; nothing to train "
            "(a larger --steps with --resume extends it)."
        ]
        assert _fingerprint(out) == before
    run_finetune(FinetuneRequest.make(steps=5, resume=True, **settings))
    assert _steps_logged(out) == [1, 2, 3, 4, 5]
    state = json.loads((out / "checkpoint" / "state.json").read_text())
    assert state["step"] == 5 and state["request"]["steps"] == 5 and state["request"]["schedule_steps"] == 2
    if family == "pgan3d":  # its phases were laid out over 2 steps: the extra ones train the final resolution, faded in
        log = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
        assert [(x["stage"], x["alpha"]) for x in log[2:]] == [(8, 1.0)] * 3  # a schedule over 5 steps would fade in at step 3
    run_finetune(FinetuneRequest.make(resume=True, **settings))  # then --resume alone: the extended run is complete
    assert _steps_logged(out) == [1, 2, 3, 4, 5]


def test_the_command_says_it_in_one_sentence_and_exits_0(make_phantom_set, tmp_path, capsys):
    data = make_phantom_set(n=4, shape=(24, 24, 24), spacing=6.0, channels="t1,t1ce,t2,flair,seg,ct", seed=61)
    argv = ["finetune", "--model", "pgan3d", "--data", str(data), "--out", str(tmp_path / "m"), "--resolution", "8", "--width", "8",
            "--batch-size", "2", "--checkpoint-every", "1", "--device", "cpu"]
    assert main([*argv, "--steps", "1"]) == 0
    capsys.readouterr()
    assert main([*argv, "--steps", "1", "--resume"]) == 0
    captured = capsys.readouterr()
    assert [line for line in captured.err.splitlines() if line.strip()] == [
        f"The run in {tmp_path / 'm'} has already trained 1 step, as many as --steps 1 asks; nothing to train "
        "(a larger --steps with --resume extends it)."
    ]
    assert captured.out.startswith(f"Model folder: {tmp_path / 'm'}")
