"""bench/bench_validity2d.py, run as a user runs it: the quick protocol at the tiniest size on a 2D model folder
trained for one step and on the phantom-slices reference. The reference is slices of the pool's own distribution,
so it must look like the real pool (precision and recall, all three tumour classes, no memorised slice: its subjects
are other phantoms) and its TSTR intervals must hold their estimates; the one-step model must not."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # rendered sets, a model and segmenter training steps

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_validity2d.py"
TINIEST = ["--subjects", "6", "--slices-per-case", "4", "--synthetic", "12", "--pool-grid", "32", "--pool-spacing", "6", "--grid", "32",
           "--tstr-grid", "32", "--tstr-spacing", "6", "--patch", "16", "--steps", "10"]


@pytest.fixture(scope="module")
def one_step_dcgan2d(make_phantom_set, tmp_path_factory) -> Path:
    from medsynth_engine.training.finetune import FinetuneRequest, run_finetune

    volumes = make_phantom_set(n=4, shape=(32, 32, 32), spacing=6.0, seed=0)  # the 2D evaluation tests' volumes: one set per session
    return run_finetune(FinetuneRequest.make(
        data=volumes, out=tmp_path_factory.mktemp("model") / "dc", steps=1, model="dcgan2d", resolution=32, width=16, batch_size=4,
        seed=5, slices_per_case=3, spacing=6.0,
    ))


def test_the_quick_protocol_gives_a_row_per_generator_and_a_sane_ceiling(one_step_dcgan2d, tmp_path):
    out = tmp_path / "v2d.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--generators", f"phantom-slices,{one_step_dcgan2d}", "--work", str(tmp_path / "w"),
         "--json", str(out), *TINIEST],
        capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["protocol"] == "quick" and result["settings"]["steps"] == 10 and result["settings"]["seeds"] == 1
    reference, model = result["rows"]
    assert (reference["generator"], model["generator"]) == ("phantom-slices", str(one_step_dcgan2d))
    for row in (reference, model):
        assert row["spatial_dims"] == 2 and len(row["tumour_area_mm2_synthetic"]) == 3 and len(row["presence_rate_real"]) == 3
        assert {"ms_ssim_synthetic", "precision", "coverage", "prdc_control", "memorised_fraction", "dice_ratio", "dice_ratio_ci",
                "control_ratio", "control_ratio_ci", "memorised_fraction_training"} <= set(row)
    tstr = result["tstr"]["phantom-slices"]["tstr"]
    assert tstr["split"] == "by subject" and tstr["subjects"] == 6 and tstr["grid"] == 32  # whole subjects on each side
    # the ceiling: the pool's own distribution, other subjects
    assert reference["precision"] >= 0.5 and reference["recall"] >= 0.5 and reference["memorised_fraction"] == 0.0
    assert reference["presence_rate_synthetic"][1] > 0 and reference["tumour_area_mm2_synthetic"][1] > 0  # oedema: every phantom tumour has it
    low, high = reference["dice_ratio_ci"]
    assert low <= reference["dice_ratio"] <= high and reference["dice_ratio"] > 0
    low, high = reference["control_ratio_ci"]
    assert low <= reference["control_ratio"] <= high
    # a one-step generator makes noise: further from the pool than the reference
    assert model["precision"] < reference["precision"]
    table = done.stdout.splitlines()
    header = next(i for i, line in enumerate(table) if line.startswith("| synthetic slices"))
    assert [line.split(" | ")[0] for line in table[header + 2 : header + 4]] == ["| phantom-slices", f"| {one_step_dcgan2d}"]
    assert "CPU seconds: " in done.stdout


def test_a_generator_short_of_the_protocols_channels_is_refused_before_anything_is_made(make_phantom_set, tmp_path):
    from medsynth_engine.training.finetune import FinetuneRequest, run_finetune

    volumes = make_phantom_set(n=4, shape=(32, 32, 32), spacing=6.0, seed=0)
    flair_only = run_finetune(FinetuneRequest.make(
        data=volumes, out=tmp_path / "flair", steps=1, model="dcgan2d", resolution=32, width=16, batch_size=4, seed=5, slices_per_case=1,
        spacing=6.0, channels="flair,seg",
    ))
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--generators", f"phantom-slices,{flair_only}", "--work", str(tmp_path / "w"), *TINIEST],
                          capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"), timeout=600)
    assert done.returncode == 2 and "cannot make channel(s) t1, t1ce, t2" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "w").exists() or not any((tmp_path / "w").iterdir())


def test_each_generator_is_audited_against_the_subjects_its_card_says_it_was_trained_on(one_step_dcgan2d, tmp_path):
    """A shipped card's recipe names its phantom training set (stylegan2d-phantom: 48 subjects); a card without a
    recipe falls back to the shipped models' 16 subjects of seed 2026."""
    import shutil

    sys.path.insert(0, str(BENCH.parent))
    from bench_validity2d import PROTOCOLS, TRAINING_SEED, _training_subjects

    assert _training_subjects(str(one_step_dcgan2d), PROTOCOLS["full"]) == (16, TRAINING_SEED)
    shipped = tmp_path / "dc"
    shutil.copytree(one_step_dcgan2d, shipped)
    card = json.loads((shipped / "model.json").read_text())
    card["recipe"] = {"data": {"model": "phantom", "n": 48, "seed": 7}, "stages": [{"out": "run", "model": "dcgan2d"}]}
    (shipped / "model.json").write_text(json.dumps(card))
    assert _training_subjects(str(shipped), PROTOCOLS["full"]) == (48, 7)
