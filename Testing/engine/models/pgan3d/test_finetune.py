"""medsynth finetune end to end at 8^3-16^3 with a few steps: losses, logs, exact resume, stop, DDP, transfer."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from medsynth_engine.errors import MedSynthError
from medsynth_engine.training.finetune import FinetuneRequest, run_finetune
from safetensors.torch import load_file

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out

#: Not imported from conftest: with several conftest modules on sys.path, `import conftest` is ambiguous.
MEDSYNTH_BIN = Path(sys.executable).parent / "medsynth"
TINY = dict(model="pgan3d", resolution=16, width=8, batch_size=2, seed=3, checkpoint_every=2, log_every=1)


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


def test_train_from_scratch_writes_a_usable_model(make_phantom_set, tmp_path, registry):
    seen: list[dict] = []
    out = run_finetune(FinetuneRequest.make(data=make_phantom_set(), out=tmp_path / "m", steps=5, **TINY), progress=seen.append)
    assert out == tmp_path / "m"
    lines = [json.loads(line) for line in (out / "loss.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2, 3, 4, 5]
    assert all(np.isfinite([line[k] for k in ("g", "d", "gp", "wdist")]).all() for line in lines)
    assert [line["stage"] for line in lines][-1] == 16 and lines[0]["stage"] == 4  # grew through all stages
    steps = [p for p in seen if "losses" in p]
    assert [p["step"] for p in steps] == [1, 2, 3, 4, 5] and steps[-1]["total"] == 5 and "eta_s" in steps[-1]
    assert {"g", "d"} <= set(steps[-1]["losses"]) and steps[-1]["stage"] == "16^3"
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["mosaic_step2.png", "mosaic_step4.png", "mosaic_step5.png"]
    card = json.loads((out / "model.json").read_text())
    assert card["architecture"]["name"] == "pgan3d" and card["shape"] == [16, 16, 16] and card["spacing"] == [12.0] * 3
    assert card["channels"] == ["t1", "t1ce", "t2", "flair", "seg"]
    assert [h["step"] for h in card["metrics"]["diversity_history"]] == [2, 4, 5]
    assert 0.0 <= card["metrics"]["ms_ssim_between_samples"] <= 1.0
    assert card["preprocessing"]["normalisation"]["channels"]["t1"]["high"] > 500
    assert "ms-" not in card["training_data"]  # no case names in the card
    plugin = registry.get(str(out))
    case = plugin.generate(seed=1, channels=("t1", "seg"), shape=(16,) * 3, spacing=(12.0,) * 3, tumour=True, device="cpu")
    assert case.arrays["t1"].dtype == np.int16 and set(np.unique(case.arrays["seg"])) <= {0, 1, 2, 4}


def test_resume_continues_exactly(make_phantom_set, tmp_path):
    data = make_phantom_set()
    straight = run_finetune(FinetuneRequest.make(data=data, out=tmp_path / "a", steps=4, **TINY))
    calls = {"n": 0}

    def stop_after_two() -> bool:
        calls["n"] += 1
        return calls["n"] >= 2

    half = run_finetune(FinetuneRequest.make(data=data, out=tmp_path / "b", steps=4, **TINY), should_stop=stop_after_two)
    state = json.loads((half / "checkpoint" / "state.json").read_text())
    assert state["step"] == 2 and state["steps_done"] == 2
    assert len((half / "loss.jsonl").read_text().splitlines()) == 2
    run_finetune(FinetuneRequest.make(data=data, out=tmp_path / "b", steps=4, resume=True, **TINY))
    a, b = _weights(straight), _weights(half)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6, msg=key)
    log_a = [json.loads(x) for x in (straight / "loss.jsonl").read_text().splitlines()]
    log_b = [json.loads(x) for x in (half / "loss.jsonl").read_text().splitlines()]
    assert [x["step"] for x in log_b] == [1, 2, 3, 4]
    np.testing.assert_allclose([x["d"] for x in log_a], [x["d"] for x in log_b], rtol=1e-5)


def test_two_gloo_processes_agree_with_one(make_phantom_set, tmp_path):
    data = make_phantom_set()
    request = dict(TINY, resolution=8, batch_size=4)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each of the two workers on this 2-core machine: the same summation order
    try:
        one = run_finetune(FinetuneRequest.make(data=data, out=tmp_path / "one", steps=3, **request))
    finally:
        torch.set_num_threads(threads)
    two = run_finetune(FinetuneRequest.make(data=data, out=tmp_path / "two", steps=3, nproc=2, **request))
    a, b = _weights(one), _weights(two)
    # The all-reduce sums in another order than one process does, and Adam turns a near-zero gradient's sign flip
    # into an update of about lr (1e-3) either way: single weights then drift apart by up to 2 lr per step (one of
    # 1,728 by 1.4e-4 in one run, four by up to 2.8e-3 in a serial full-suite run of 2026-12-01). So no weight may move
    # more than those lr-sized steps allow, and of all weights at least 99 % must agree to 3e-4: a worker that
    # trained on its own half batch without the all-reduce moves most weights apart. The losses must agree to 1e-5.
    bound = 2 * 1e-3 * 3 + 1e-5
    apart = {key: (a[key].float() - b[key].float()).abs() for key in a}
    for key, gap in apart.items():
        assert float(gap.max()) <= bound, f"{key}: {float(gap.max())} apart"
    far = sum(int((gap > 3e-4).sum()) for gap in apart.values())
    total = sum(gap.numel() for gap in apart.values())
    assert far <= 0.01 * total, f"{far} of {total} weights more than 3e-4 apart"
    la = [json.loads(x)["g"] for x in (one / "loss.jsonl").read_text().splitlines()]
    lb = [json.loads(x)["g"] for x in (two / "loss.jsonl").read_text().splitlines()]
    np.testing.assert_allclose(la, lb, rtol=1e-4, atol=1e-5)


def test_transfer_to_a_single_channel_with_frozen_stages(make_phantom_set, tmp_path):
    data = make_phantom_set()
    base = run_finetune(FinetuneRequest.make(data=data, out=tmp_path / "base", steps=2, **dict(TINY, resolution=8)))
    base_g = {k: v for k, v in _weights(base).items() if k.startswith("generator.blocks.0.")}
    out = run_finetune(
        FinetuneRequest.make(
            model=str(base), data=data, out=tmp_path / "t1", channels="t1", resolution=16, steps=2, batch_size=2,
            freeze_stages=1, checkpoint_every=2,
        )
    )
    card = json.loads((out / "model.json").read_text())
    assert card["channels"] == ["t1"] and card["shape"] == [16] * 3 and card["spacing"] == [12.0] * 3
    tuned = _weights(out)
    for key, value in base_g.items():  # the frozen first stage is the base's
        torch.testing.assert_close(tuned[key], value)
    assert tuned["generator.to_out.2.weight"].shape[0] == 1


def test_request_errors(make_phantom_set, tmp_path):
    data = make_phantom_set()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    (tmp_path / "model_only").mkdir()
    (tmp_path / "model_only" / "model.json").write_text("{}")
    cases = [
        (dict(out=tmp_path / "full"), "not empty"),
        (dict(out=tmp_path / "model_only", resume=True), "no checkpoint to resume"),
        (dict(out=tmp_path / "n2", resolution=12), "power of two"),
        (dict(out=tmp_path / "n3", batch_size=3, nproc=2), "multiple of --nproc"),
        (dict(out=tmp_path / "n4", model="phantom"), "'phantom' model family does not train"),
        (dict(out=tmp_path / "n5", model="nope"), "Unknown model .nope.; give a family to train a new model"),
        (dict(out=tmp_path / "n6", channels="t1,ct"), "not ct"),
    ]
    for change, message in cases:
        kwargs = dict(TINY, data=data, out=tmp_path / "x", steps=1)
        kwargs.update(change)
        with pytest.raises(MedSynthError, match=message):
            run_finetune(FinetuneRequest.make(**kwargs))
    assert not (tmp_path / "n2").exists()


def test_cli_skip_bad_then_generate(make_phantom_set, tmp_path):
    data = shutil.copytree(make_phantom_set(), tmp_path / "data")
    bad = sorted(data.glob("*/*_t2.nii.gz"))[0]
    bad.write_bytes(bad.read_bytes()[:100])
    base = [str(MEDSYNTH_BIN), "finetune", "--model", "pgan3d", "--data", str(data), "--resolution", "8", "--width", "8"]
    base += ["--steps", "2", "--batch-size", "2", "--checkpoint-every", "2"]
    refused = subprocess.run([*base, "--out", str(tmp_path / "m0")], capture_output=True, text=True)
    assert refused.returncode == 2 and bad.name in refused.stderr and "--skip-bad" in refused.stderr
    assert not (tmp_path / "m0").exists()
    card_text = ["--description", "Three phantom heads", "--licence", "CC0-1.0"]
    done = subprocess.run([*base, "--out", str(tmp_path / "m"), "--skip-bad", *card_text], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "skipped" in done.stderr and bad.name in done.stderr
    assert "medsynth generate --model" in done.stdout
    card = json.loads((tmp_path / "m" / "model.json").read_text())
    assert card["training_data"] == "Three phantom heads" and card["licence"] == "CC0-1.0"
    report = json.loads((tmp_path / "m" / "checkpoint" / "data_report.json").read_text())
    assert report["cases"] == 3 and len(report["skipped"]) == 1
    gen = subprocess.run(
        [str(MEDSYNTH_BIN), "generate", "--model", str(tmp_path / "m"), "-n", "2", "--seed", "4", "--out", str(tmp_path / "set"), "--quiet"],
        capture_output=True,
        text=True,
    )
    assert gen.returncode == 0, gen.stderr
    manifest = json.loads((tmp_path / "set" / "manifest.json").read_text())
    assert manifest["model"]["architecture"]["name"] == "pgan3d" and len(manifest["cases"]) == 2


def test_resume_before_the_first_checkpoint_starts_again(make_phantom_set, tmp_path):
    """A run killed before its first checkpoint leaves a log and a data report; --resume starts it from step 0."""
    out = tmp_path / "m"
    (out / "checkpoint").mkdir(parents=True)
    (out / "checkpoint" / "data_report.json").write_text("{}")
    (out / "loss.jsonl").write_text('{"step": 1}\n')
    run_finetune(FinetuneRequest.make(data=make_phantom_set(), out=out, steps=2, resume=True, **dict(TINY, resolution=8)))
    assert [json.loads(x)["step"] for x in (out / "loss.jsonl").read_text().splitlines()] == [1, 2]
    assert json.loads((out / "checkpoint" / "state.json").read_text())["step"] == 2
