"""bench/gpu_ship.py: its rehearsal recipe keeps the recipe's stages, options and ship text and shrinks only what
sets size and time (the stop that ends the GPU training and the card it leaves are tested with ship() in
Testing/engine/weights/test_ship.py); its shell entry point parses and defaults to a recipe that exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from medsynth_engine.weights.ship import read_recipe

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import gpu_ship  # noqa: E402


def test_the_rehearsal_recipe_is_the_recipe_at_32x32():
    recipe = read_recipe(ROOT / "engine/medsynth_engine/models/stylegan2d/phantom_recipe.json")
    small = gpu_ship.tiny(recipe)
    assert small["data"] == {**recipe["data"], "n": 4, "shape": [32, 32, 32], "spacing": [6.0, 6.0, 6.0]}
    stage, original = small["stages"][0], recipe["stages"][0]
    assert stage["resolution"] == 32 and stage["width"] == 16 and stage["steps"] == 2
    assert {k: v for k, v in stage.items() if k not in gpu_ship.TINY_STAGE} == {k: v for k, v in original.items() if k not in gpu_ship.TINY_STAGE}
    assert small["ship"] == recipe["ship"] and recipe["stages"][0]["width"] == original["width"]  # the input is not changed
    continued = gpu_ship.tiny({**recipe, "stages": [original, {"out": "run2", "model": "@run", "steps": 9}]})
    assert "width" not in continued["stages"][1] and continued["stages"][1]["steps"] == 2  # a continued stage keeps its base's width


def test_the_shell_entry_point_parses_and_its_default_recipe_exists():
    script = ROOT / "bench" / "gpu_ship.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    default = re.search(r"RECIPE:-([^}]+)\}", script.read_text()).group(1)
    assert (ROOT / default).is_file() and read_recipe(ROOT / default)["stages"][0]["model"] == "stylegan2d"
