"""Train a shipped model's recipe on a lent GPU within a hard time budget, and measure the 2D ones' validity row.

For the shipped models whose recipes want a GPU (``stylegan2d``'s ``phantom_recipe.json``: 64 subjects, width 256,
batch 16, 20,000 steps), in one call of the device tool through ``bench/gpu_ship.sh``; ``--tiny`` rehearses it on a
CPU at 32x32 in a couple of minutes:

    python bench/gpu_ship.py --id stylegan2d-phantom --recipe engine/medsynth_engine/models/stylegan2d/phantom_recipe.json --out "$OUT"
    python bench/gpu_ship.py --id stylegan2d-phantom --recipe ... --out /tmp/rehearsal --tiny

Steps, each timed into ``timings.json``:
1. ``python -m medsynth_engine.weights.ship``'s ``ship`` on the recipe, stopped cleanly at the training budget: the
   shipped folder (``$OUT/<id>``: weights, card, ``preview.png``) records the steps it reached in its recipe (with
   the planned ``schedule_steps``), so replaying its card on any machine gives the same model;
2. for a 2D family, ``bench/bench_validity2d.py`` (the full protocol, TSTR on the GPU) on the phantom-slices reference
   and the new model, its table in ``validity2d.md`` and every number in ``validity2d.json``.
To ship it: copy ``$OUT/<id>`` into ``engine/medsynth_engine/weights/``, add the id to the family's ``shipped``, and
record the row in the card with ``bench_validity2d.py --write-cards`` (or commit the JSON's row).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: --tiny: the recipe shrunk to 32x32 slices of 4 subjects at 6 mm, 2 steps; the 2D benchmark at its tiniest.
TINY_DATA = {"n": 4, "shape": [32, 32, 32], "spacing": [6.0, 6.0, 6.0]}
TINY_STAGE = {"resolution": 32, "width": 16, "steps": 2, "batch_size": 2, "spacing": 6.0, "checkpoint_every": 1, "slices_per_case": 3}
TINY_VALIDITY = ["--quick", "--subjects", "6", "--slices-per-case", "4", "--synthetic", "12", "--pool-grid", "32", "--pool-spacing", "6",
                 "--grid", "32", "--tstr-grid", "32", "--tstr-spacing", "6", "--patch", "16", "--steps", "10"]
TWO_D = ("dcgan2d", "stylegan2d")


def tiny(recipe: dict) -> dict:
    """The recipe at rehearsal size (same stages, options and ship text)."""
    stages = [{**stage, **{k: v for k, v in TINY_STAGE.items() if k != "width" or not str(stage["model"]).startswith("@")}}
              for stage in recipe["stages"]]
    return {**recipe, "data": {**recipe["data"], **TINY_DATA}, "stages": stages}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--id", required=True, help="the shipped model id to make (e.g. stylegan2d-phantom)")
    parser.add_argument("--recipe", type=Path, required=True, help="a card file with the recipe (e.g. the family's phantom_recipe.json)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the shipped model, timings and validity row")
    parser.add_argument("--budget-s", type=float, default=500.0, help="wall-clock budget for everything (default 500 s)")
    parser.add_argument("--validity-share", type=float, default=0.3, help="share of the budget kept for the validity row (default 0.3)")
    parser.add_argument("--tiny", action="store_true", help="rehearse at 32x32 on any machine")
    args = parser.parse_args(argv)
    import torch
    from medsynth_engine.weights.ship import read_recipe, ship

    started = time.perf_counter()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    recipe = read_recipe(args.recipe)
    if args.tiny:
        recipe = tiny(recipe)
    family = str(recipe["stages"][0]["model"])
    out = args.out.absolute()
    out.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    train_until = started + (1.0 - (args.validity_share if family in TWO_D else 0.0)) * args.budget_s

    t0 = time.perf_counter()
    model = ship(args.id, recipe, out / args.id, out / "work", should_stop=lambda: time.perf_counter() > train_until)
    timings["ship"] = round(time.perf_counter() - t0, 1)
    card = json.loads((model / "model.json").read_text())
    print(f"shipped {model} at step {card['metrics'].get('steps')} in {timings['ship']} s", flush=True)
    result = {"id": args.id, "steps": card["metrics"].get("steps"), "recipe": card["recipe"]}
    if family in TWO_D:
        t0 = time.perf_counter()
        command = [sys.executable, str(ROOT / "bench" / "bench_validity2d.py"), "--generators", f"phantom-slices,{model}", "--work",
                   str(out / "validity-work"), "--json", str(out / "validity2d.json"), "--device", device, *(TINY_VALIDITY if args.tiny else [])]
        run = subprocess.run(command, capture_output=True, text=True)
        (out / "validity2d.md").write_text(run.stdout + run.stderr)
        timings["validity"] = round(time.perf_counter() - t0, 1)
        if run.returncode != 0:
            print(f"bench_validity2d failed (exit {run.returncode}); its output is in {out / 'validity2d.md'}", file=sys.stderr)
            return 1
        rows = json.loads((out / "validity2d.json").read_text())["rows"]
        result["validity"] = {r["generator"]: {k: r.get(k) for k in ("dice_ratio", "dice_ratio_ci", "control_ratio", "precision", "recall",
                                                                      "memorised_fraction", "presence_rate_synthetic")} for r in rows}
    timings["total"] = round(time.perf_counter() - started, 1)
    result["machine"] = {"device": torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or platform.machine(),
                         "torch": torch.__version__, "python": sys.version.split()[0]}
    result["timings_s"] = timings
    (out / "timings.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({k: result[k] for k in ("id", "steps", "timings_s") if k in result} | {"validity": result.get("validity")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
