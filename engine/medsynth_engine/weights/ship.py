"""Reproduce a shipped model from the recipe recorded in its card: ``python -m medsynth_engine.weights.ship FAMILY``.

A shipped card's ``recipe`` says how its weights were made, in the words of the commands a user has:

    "recipe": {
      "data": {"model": "phantom", "n": 160, "seed": 2026, "channels": "t1,t1ce,t2,flair,seg", "shape": [32, 32, 32],
               "spacing": [6, 6, 6]},
      "stages": [{"out": "run", "model": "pgan3d", "steps": 2600, "batch_size": 4, "width": 64}],
      "ship": {"float16": false, "description": "...", "licence": "..."}
    }

A long training can span sessions: with the same ``--work`` folder, a rerun keeps the generated set and resumes
each stage from its last checkpoint (exactly; a stage that has trained its steps is kept as it is).

``data`` is a ``medsynth generate`` request (the training set); ``pools`` (optional) names tissue pools for
domain-randomised channel-model training (``models.channelnet.tissuepool.build_pool`` arguments, or ``parts``:
a list of them merged, see ``build_recipe_pool``); each stage is a
``medsynth finetune`` request with flat option names, ``out`` a folder name inside the work folder, ``data``
defaulting to the generated set (``pool:NAME`` for a pool) and a ``model`` of ``@name`` meaning an earlier stage's
output folder. The last stage's folder is shipped: its card
gets the shipped id, the recipe and the ship text, floating weights become float16 where ``ship.float16`` says so,
``ship.architecture`` settings (e.g. ldm3d's default ``guidance``) are set in the card, and its newest training
mosaic becomes ``preview.png``. The run replays the commands with today's code, so it
reproduces the recipe, not necessarily the same bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from ..errors import MedSynthError
from . import CARD_NAME, WEIGHTS_DIR, shipped_folder

__all__ = ["ship", "package", "read_recipe", "build_recipe_pool", "main"]

PREVIEW = "preview.png"


def build_recipe_pool(out: Path, spec: dict[str, Any], scale: float = 1.0) -> Path:
    """A recipe's tissue pool: ``build_pool`` arguments, or ``{"parts": [arguments, ...]}`` built one by one and merged
    (a pool built by parallel processes, as ``bench/gpu_channel.py`` builds it, is recorded that way)."""
    from ..models.channelnet.tissuepool import build_pool, merge_pools

    def scaled(part: dict[str, Any]) -> dict[str, Any]:
        return _scaled(_scaled(dict(part), scale, "tumour_cases", 1), scale, "healthy_cases", 1)

    if "parts" not in spec:
        return build_pool(out, **scaled(spec))
    parts = [build_pool(out.with_name(f"{out.name}-part{i}"), **scaled(part)) for i, part in enumerate(spec["parts"])]
    merged = merge_pools(parts, out)
    for part in parts:
        shutil.rmtree(part, ignore_errors=True)
    return merged


def read_recipe(card_path: Path) -> dict[str, Any]:
    """The recipe of a card file, checked for the parts ``ship`` needs (one sentence if one is missing)."""
    try:
        card = json.loads(Path(card_path).read_text())
    except (OSError, ValueError) as exc:
        raise MedSynthError(f"The card {card_path} cannot be read ({exc}).") from None
    recipe = card.get("recipe")
    if not isinstance(recipe, dict) or not isinstance(recipe.get("data"), dict) or not recipe.get("stages"):
        raise MedSynthError(f"The card {card_path} records no recipe (data and stages); it cannot be reproduced.")
    names: set[str] = set()
    for i, stage in enumerate(recipe["stages"]):
        if not isinstance(stage, dict) or "out" not in stage or "model" not in stage:
            raise MedSynthError(f"Stage {i + 1} of the recipe in {card_path} needs an 'out' folder name and a 'model'.")
        if str(stage["model"]).startswith("@") and stage["model"][1:] not in names:
            raise MedSynthError(f"Stage {i + 1} of the recipe in {card_path} continues '{stage['model'][1:]}', which no earlier stage made.")
        names.add(stage["out"])
    return recipe


def _scaled(values: dict[str, Any], scale: float, key: str, least: int) -> dict[str, Any]:
    if scale >= 1.0 or key not in values:
        return values
    return {**values, key: max(least, int(round(values[key] * scale)))}


def ship(model_id: str, recipe: dict[str, Any], out: Path, work: Path, *, scale: float = 1.0, progress=print, should_stop=None) -> Path:
    """Run ``recipe`` in ``work`` and write the shipped folder ``out`` (through a temporary folder and a rename).

    ``should_stop`` (a time budget, e.g. on a lent GPU) ends the training at a checkpoint: the stage it stopped in
    ships with the steps it reached, later stages are not run, and the card's recipe says so (that stage's
    ``steps`` set to the steps reached and ``schedule_steps`` to the planned ones, the later stages dropped), so
    replaying the card gives the same model."""
    from ..generate import GenerateRequest, generate_set
    from ..registry import default_registry
    from ..training.finetune import run_finetune
    from ..training.request import FinetuneRequest

    registry = default_registry()
    work.mkdir(parents=True, exist_ok=True)
    data_spec = _scaled(dict(recipe["data"]), scale, "n", 2)
    data = work / "data"
    uses_set = any(not str(stage.get("data", "")).startswith("pool:") for stage in recipe["stages"])
    if uses_set and not (data / "manifest.json").is_file():
        progress(f"generating the training set: {data_spec}")
        fields = {k: tuple(v) if k in ("shape", "spacing") else v for k, v in data_spec.items() if k != "model"}
        generate_set(GenerateRequest(model=data_spec.get("model", "phantom"), out=data, **fields), registry)
    pools: dict[str, Path] = {}
    for name, spec in recipe.get("pools", {}).items():
        pools[name] = work / f"pool-{name}"
        if not pools[name].is_dir():
            progress(f"building tissue pool {name}: {spec}")
            build_recipe_pool(pools[name], spec, scale)
    folders: dict[str, Path] = {}
    recipe = json.loads(json.dumps(recipe))  # the recipe the card records (a stop shortens it)
    for i, stage in enumerate(list(recipe["stages"])):
        values = _scaled(dict(stage), scale, "steps", 1)
        values["out"] = work / values.pop("out")
        if str(values["model"]).startswith("@"):
            values["model"] = str(folders[values["model"][1:]])
        values.setdefault("data", data)
        if str(values["data"]).startswith("pool:"):
            values["data"] = pools[str(values["data"])[5:]]
        if values["out"].is_dir() and any(values["out"].iterdir()):
            values["resume"] = True  # a rerun in the same work folder continues the stage, or keeps it when finished
        progress(f"stage {i + 1}/{len(recipe['stages'])}: medsynth finetune {values}")
        folder = run_finetune(FinetuneRequest.make(**values), registry=registry, should_stop=should_stop)
        folders[stage["out"]] = Path(folder)
        reached = json.loads((Path(folder) / CARD_NAME).read_text()).get("metrics", {}).get("steps")
        if should_stop is not None and reached is not None and values.get("steps") is not None and reached < values["steps"]:
            progress(f"stopped at step {reached} of {values['steps']} in stage {i + 1}: shipping it, the recipe records {reached}")
            # schedule_steps keeps step-defined schedules (pgan3d's phases, ldm3d's learning rate) laid out as planned
            recipe["stages"] = [*recipe["stages"][:i], {**stage, "steps": reached, "schedule_steps": stage.get("schedule_steps", values["steps"])}]
            break
    return package(folders[recipe["stages"][-1]["out"]], model_id, recipe, out, registry)


def package(last: Path, model_id: str, recipe: dict[str, Any], out: Path, registry=None) -> Path:
    """Write the trained model folder ``last`` as the shipped folder ``out``: the shipped id, the recipe and the ship
    text in its card, float16 where the recipe says, its newest training mosaic as the preview; checked to load as
    its family's model, then put in place by a rename. ``ship`` ends here; a run chosen from a training's checkpoints
    (on a validation set) is packaged the same way."""
    from ..modelfile import WEIGHTS_FILE, load_model_folder, write_atomic
    from ..registry import default_registry
    from ..training.losslog import SAMPLES_DIR

    registry = registry or default_registry()
    card, tensors = load_model_folder(last)
    extra = recipe.get("ship", {})
    if extra.get("float16"):
        import torch

        tensors = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in tensors.items()}
    from safetensors.torch import save

    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.ship-", dir=out.parent))
    try:
        blob = save(tensors)
        write_atomic(staging / WEIGHTS_FILE, blob)
        card.id = model_id
        card.weights = {"file": WEIGHTS_FILE, "sha256": hashlib.sha256(blob).hexdigest(),
                        "source": f"{card.weights.get('source', '')}; shipped by python -m medsynth_engine.weights.ship"}
        card.training_data = extra.get("description", card.training_data)
        card.licence = extra.get("licence", card.licence)
        card.architecture = {**card.architecture, **extra.get("architecture", {})}
        data = card.to_dict()
        data["recipe"] = recipe
        write_atomic(staging / CARD_NAME, (json.dumps(data, indent=2) + "\n").encode())
        mosaics = sorted((last / SAMPLES_DIR).glob("*.png"), key=lambda p: p.stat().st_mtime)
        if mosaics:
            shutil.copyfile(mosaics[-1], staging / PREVIEW)
        registry.family_for(str(staging)).load_folder(staging)  # it loads as the family's model before it ships
        staging.chmod(0o755)  # shipped files are installed for every user (mkdtemp and atomic writes make them private)
        for item in staging.iterdir():
            item.chmod(0o644)
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medsynth_engine.weights.ship", description=__doc__.split("\n\n")[0])
    parser.add_argument("family", help="the family whose shipped model to reproduce (e.g. pgan3d, ldm3d, seg, mr2ct)")
    parser.add_argument("--model", default=None, help="which shipped model of the family (default: its first)")
    parser.add_argument("--card", type=Path, default=None, help="take the recipe from this card file instead")
    parser.add_argument("--out", type=Path, default=None, help="where to write the model folder (default: replace the shipped one)")
    parser.add_argument("--work", type=Path, default=None, help="folder for the training set and stage runs (default: a temporary one); "
                        "a rerun with the same folder keeps the set and continues each stage from its last checkpoint")
    parser.add_argument("--scale", type=float, default=1.0, help="shrink cases and steps by this factor for a rehearsal (not what ships)")
    args = parser.parse_args(argv)
    try:
        from ..registry import default_registry

        family = default_registry().family(args.family)
        model_id = args.model or (family.shipped[0] if family.shipped else None)
        if model_id is None or (args.model and model_id not in family.shipped):
            raise MedSynthError(f"The '{family.name}' family ships no model {args.model or ''}; its shipped models: {', '.join(family.shipped) or 'none'}.")
        card = args.card or (shipped_folder(model_id) or WEIGHTS_DIR / model_id) / CARD_NAME
        recipe = read_recipe(card)
        if not 0 < args.scale <= 1:
            raise MedSynthError(f"--scale must be above 0 and at most 1, not {args.scale}.")
        out = (args.out or WEIGHTS_DIR / model_id).absolute()
        with tempfile.TemporaryDirectory(prefix="medsynth-ship-") as scratch:
            done = ship(model_id, recipe, out, (args.work or Path(scratch)).absolute(), scale=args.scale)
        print(done)
        return 0
    except MedSynthError as exc:
        print(f"medsynth ship: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
