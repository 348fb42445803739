"""GPU recipe: train the labels-first generator (l2i3d) at 128^3 / 1.5 mm within a hard time budget, and record it.

Run this whenever a GPU machine is lent, through ``bench/gpu_recipe.sh`` (it installs what travels in .whl/ first); it
is not part of the tests, and ``--tiny`` rehearses it on a CPU in about two minutes:

    python bench/gpu_recipe.py --out "$OUT" --budget-s 540        # one large GPU, about 9 minutes in all
    python bench/gpu_recipe.py --out /tmp/rehearsal --tiny          # the same steps at 32^3 on a CPU

Steps, each timed into ``timings.json``:
1. the training set: phantom cases at the model grid (the renderer runs on the GPU too);
2. ``medsynth finetune --model l2i3d`` at that grid with bf16 autocast, stopped cleanly at the training budget
   (whatever step it reached is a complete model folder with its card and mosaics);
3. a validity row in ``validity.json``: the trained model's samples against fresh phantom cases, with the
   benchmark's metrics (MS-SSIM, precision/recall/density/coverage, tumour statistics, memorisation) and a
   one-seed TSTR on the GPU (``--tstr-steps``), so the run says whether it is worth shipping.
``$OUT`` then holds ``model/`` (weights, card, ``samples/`` mosaics), ``timings.json`` and ``validity.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import gpu_common
import torch
from medsynth_engine.evaluate.run import EvaluateRequest, run_evaluation
from medsynth_engine.evaluate.tstr import TstrSettings
from medsynth_engine.generate import GenerateRequest, generate_set
from medsynth_engine.registry import default_registry
from medsynth_engine.training.finetune import run_finetune
from medsynth_engine.training.request import FinetuneRequest

FULL = {"grid": 128, "spacing": 1.5, "cases": 96, "real": 24, "synthetic": 16, "width": 24, "batch": 8, "tstr_steps": 600, "steps": 20_000}
TINY = {"grid": 32, "spacing": 6.0, "cases": 6, "real": 6, "synthetic": 4, "width": 4, "batch": 2, "tstr_steps": 4, "steps": 6}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="an empty or new folder for the model, timings and validity row")
    parser.add_argument("--budget-s", type=float, default=540.0, help="wall-clock budget for everything (default 540 s)")
    parser.add_argument("--tiny", action="store_true", help="rehearse at 32^3 on any machine")
    args = parser.parse_args(argv)
    size = TINY if args.tiny else FULL
    device = "cuda" if torch.cuda.is_available() else "cpu"
    started = time.perf_counter()
    deadline = started + args.budget_s
    timings: dict[str, float] = {}
    args.out.mkdir(parents=True, exist_ok=True)
    registry = default_registry()
    grid, spacing = (size["grid"],) * 3, (size["spacing"],) * 3

    def timed(name: str, fn):
        return gpu_common.timed(timings, name, fn)

    def phantom_set(name: str, n: int, seed: int) -> Path:
        request = GenerateRequest(model="phantom", n=n, seed=seed, out=args.out / name, channels=("t1", "t1ce", "t2", "flair", "seg"),
                                  shape=grid, spacing=spacing, device=device)
        generate_set(request, registry)
        return args.out / name

    data = timed("generate training set", lambda: phantom_set("data", size["cases"], 3000))
    real = timed("generate real set", lambda: phantom_set("real", size["real"], 7100))
    # what is left after training: sampling, evaluation and a one-seed TSTR, measured on the rehearsal and scaled
    reserve = 0.30 * args.budget_s
    train_until = deadline - reserve

    def should_stop() -> bool:
        return time.perf_counter() > train_until

    request = FinetuneRequest.make(
        model="l2i3d", data=data, out=args.out / "model", steps=size["steps"], batch_size=size["batch"], resolution=size["grid"],
        spacing=size["spacing"], width=size["width"], amp=device == "cuda", device=device, checkpoint_every=500 if not args.tiny else 3,
        description=f"{size['cases']} procedural phantom subjects (generate seed 3000-), {size['grid']}^3 at {size['spacing']} mm; GPU recipe run",
    )
    model = timed("train", lambda: run_finetune(request, should_stop=should_stop, registry=registry))
    card = json.loads((model / "model.json").read_text())
    timed("sample", lambda: generate_set(
        GenerateRequest(model=str(model), n=size["synthetic"], seed=7200, out=args.out / "synthetic", channels=("t1", "t1ce", "t2", "flair", "seg"),
                        device=device), registry))
    tstr = TstrSettings(steps=size["tstr_steps"], seeds=1, patch=min(64, size["grid"]) if not args.tiny else 16, device=device)
    evaluation = EvaluateRequest(synthetic=args.out / "synthetic", real=real, out=args.out / "report", grid=size["grid"], tstr=True,
                                 tstr_grid=size["grid"], tstr_spacing=size["spacing"], tstr_settings=tstr)
    report = timed("evaluate", lambda: run_evaluation(evaluation))
    metrics = json.loads((report / "metrics.json").read_text())
    keys = ("ms_ssim_synthetic", "ms_ssim_real", "precision", "recall", "density", "coverage", "memorised_fraction", "dice_real",
            "dice_synthetic", "dice_ratio", "dice_ratio_ci", "control_ratio", "control_ratio_ci", "tumour_volume_ml", "tumour_statistics")
    row = {k: metrics.get(k) for k in keys}
    timings["total"] = round(time.perf_counter() - started, 1)
    machine = {"device": torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or platform.machine(),
               "torch": torch.__version__, "python": sys.version.split()[0]}
    (args.out / "validity.json").write_text(json.dumps({"model": card["id"], "steps": card["metrics"].get("steps"), "grid": size["grid"],
                                                         "spacing": size["spacing"], "row": row, "machine": machine}, indent=2))
    (args.out / "timings.json").write_text(json.dumps({"timings_s": timings, "budget_s": args.budget_s, "machine": machine}, indent=2))
    print(json.dumps({"steps": card["metrics"].get("steps"), "dice_ratio": row["dice_ratio"], "timings_s": timings}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
