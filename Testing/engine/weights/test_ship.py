"""The ship step: every shipped model records a recipe that the family's trainer accepts, and ``python -m
medsynth_engine.weights.ship`` replays a recipe into a model folder that loads (rehearsed at a tiny size)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from medsynth_engine.errors import MedSynthError
from medsynth_engine.registry import default_registry
from medsynth_engine.training.request import FinetuneRequest
from medsynth_engine.weights import WEIGHTS_DIR, shipped_folder
from medsynth_engine.weights.ship import main, read_recipe

SHIPPED = sorted(p.name for p in WEIGHTS_DIR.iterdir() if (p / "model.json").is_file())


RECIPES = sorted((Path(__file__).parents[3] / "engine" / "medsynth_engine" / "models").glob("*/phantom_recipe*.json"))


@pytest.mark.parametrize("model_id", SHIPPED)
def test_every_shipped_model_records_a_recipe_its_family_accepts(model_id):
    _check_recipe(model_id, shipped_folder(model_id) / "model.json")


@pytest.mark.parametrize("card", RECIPES, ids=[f"{p.parent.name}/{p.name}" for p in RECIPES])
def test_every_recipe_waiting_to_be_trained_is_one_its_family_accepts(card):
    assert RECIPES, "no recipe files found"
    _check_recipe(json.loads(card.read_text())["id"], card)


def _check_recipe(model_id, card):
    registry = default_registry()
    family = registry.family_for(model_id.replace("-phantom", ""))
    recipe = read_recipe(card)
    assert recipe["data"]["model"] == "phantom" and recipe["data"]["n"] >= 2
    first = recipe["stages"][0]["model"]
    assert registry.family_for(first) is family
    for stage in recipe["stages"]:
        values = {k: v for k, v in stage.items() if k not in ("out", "model", "data")}  # data: the set or a pool
        request = FinetuneRequest.make(model=first, data="d", out="o", **values)
        family.trainer.parse(request.options, family.name)  # raises on an option the family does not have
        assert set(request.options) <= {spec.name for spec in family.options()}


def test_a_recipe_that_continues_an_unknown_stage_is_refused(tmp_path):
    card = tmp_path / "model.json"
    card.write_text(json.dumps({"recipe": {"data": {"model": "phantom", "n": 2}, "stages": [{"out": "b", "model": "@a"}]}}))
    with pytest.raises(MedSynthError, match="continues 'a', which no earlier stage made"):
        read_recipe(card)
    card.write_text(json.dumps({"id": "x"}))
    with pytest.raises(MedSynthError, match="records no recipe"):
        read_recipe(card)


@pytest.mark.slow
def test_a_recipe_replays_into_a_model_that_loads(tmp_path, capsys):
    recipe = {
        "data": {"model": "phantom", "n": 2, "seed": 1, "channels": "t1,seg", "shape": [8, 8, 8], "spacing": [10.0, 10.0, 10.0]},
        "stages": [
            {"out": "run", "model": "pgan3d", "resolution": 8, "spacing": 10.0, "width": 8, "steps": 2, "batch_size": 2, "checkpoint_every": 2},
            {"out": "run2", "model": "@run", "steps": 1, "batch_size": 2, "freeze_stages": 1, "checkpoint_every": 1},
        ],
        "ship": {"float16": True, "description": "two tiny phantom cases", "licence": "CC0-1.0"},
    }
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"recipe": recipe}))
    out = tmp_path / "pgan3d-phantom"
    assert main(["pgan3d", "--card", str(card), "--out", str(out), "--work", str(tmp_path / "work")]) == 0
    shipped = json.loads((out / "model.json").read_text())
    assert shipped["id"] == "pgan3d-phantom" and shipped["recipe"] == recipe
    assert shipped["training_data"] == "two tiny phantom cases" and shipped["licence"] == "CC0-1.0"
    assert (out / "preview.png").stat().st_size > 0 and not list(tmp_path.glob(".pgan3d-phantom.ship-*"))
    # installed for every user: readable by all, not private like the temporary files it was staged in
    assert out.stat().st_mode & 0o777 == 0o755 and {p.stat().st_mode & 0o777 for p in out.iterdir()} == {0o644}
    model = default_registry().get(str(out))
    assert model.family.name == "pgan3d"
    case = model.generate(seed=0, channels=("t1", "seg"), shape=(8, 8, 8), spacing=(10.0,) * 3, tumour=True, device="cpu")
    assert case.arrays["t1"].shape == (8, 8, 8)


def test_ship_refuses_a_model_the_family_does_not_ship(capsys):
    assert main(["pgan3d", "--model", "seg-phantom"]) == 2
    assert "ships no model seg-phantom" in capsys.readouterr().err


@pytest.mark.slow
def test_a_rerun_in_the_same_work_folder_continues_an_interrupted_stage(tmp_path):
    """A training that spans sessions: the stage stopped after its first checkpoint resumes, a finished one is kept."""
    from medsynth_engine.generate import GenerateRequest, generate_set
    from medsynth_engine.training.finetune import run_finetune
    from medsynth_engine.weights.ship import ship

    stage = {"out": "run", "model": "pgan3d", "resolution": 8, "spacing": 10.0, "width": 8, "steps": 2, "batch_size": 2,
             "checkpoint_every": 1, "log_every": 1, "seed": 3}
    recipe = {"data": {"model": "phantom", "n": 2, "seed": 1, "channels": "t1,seg", "shape": [8, 8, 8], "spacing": [10.0, 10.0, 10.0]},
              "stages": [stage], "ship": {"description": "two tiny phantom cases", "licence": "CC0-1.0"}}
    work = tmp_path / "work"
    generate_set(GenerateRequest(model="phantom", out=work / "data", n=2, seed=1, channels="t1,seg", shape=(8, 8, 8),
                                 spacing=(10.0, 10.0, 10.0)), default_registry())
    values = {k: v for k, v in stage.items() if k != "out"}
    stopped = run_finetune(FinetuneRequest.make(out=work / "run", data=work / "data", **values), should_stop=lambda: True)
    assert stopped == work / "run"  # the session ended after the first step's checkpoint
    steps_logged = [json.loads(line)["step"] for line in (work / "run" / "loss.jsonl").read_text().splitlines()]
    assert steps_logged == [1]
    out = ship("pgan3d-phantom", recipe, tmp_path / "shipped", work)
    log = (work / "run" / "loss.jsonl").read_text()
    assert [json.loads(line)["step"] for line in log.splitlines()] == [1, 2]  # resumed at step 2, not started again
    assert json.loads((out / "model.json").read_text())["metrics"]["steps"] == 2
    # A fresh run of the recipe gives the same weights: the resume was exact.
    fresh = ship("pgan3d-phantom", recipe, tmp_path / "fresh", tmp_path / "work2")
    assert (fresh / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()
    ship("pgan3d-phantom", recipe, tmp_path / "again", work)  # finished: kept, nothing trained
    assert (work / "run" / "loss.jsonl").read_text() == log
    assert (tmp_path / "again" / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()


@pytest.mark.slow
def test_a_budget_stop_ships_the_steps_reached_and_the_card_replays_them(tmp_path):
    """ship(should_stop=...) (a lent GPU's time budget): the stage it stopped in ships at the step reached, later stages
    are not run, and the card's recipe is cut to match, so replaying the card gives the same weights."""
    from medsynth_engine.weights.ship import ship

    stage = {"out": "run", "model": "pgan3d", "resolution": 8, "spacing": 10.0, "width": 8, "steps": 3, "batch_size": 2,
             "checkpoint_every": 1, "log_every": 1, "seed": 3}
    recipe = {"data": {"model": "phantom", "n": 2, "seed": 1, "channels": "t1,seg", "shape": [8, 8, 8], "spacing": [10.0, 10.0, 10.0]},
              "stages": [stage, {"out": "run2", "model": "@run", "steps": 1, "batch_size": 2, "checkpoint_every": 1}],
              "ship": {"description": "two tiny phantom cases", "licence": "CC0-1.0"}}
    out = ship("pgan3d-phantom", recipe, tmp_path / "shipped", tmp_path / "work", should_stop=lambda: True)
    card = json.loads((out / "model.json").read_text())
    assert card["metrics"]["steps"] == 1 and card["recipe"]["stages"] == [{**stage, "steps": 1, "schedule_steps": 3}]
    assert not (tmp_path / "work" / "run2").exists() and recipe["stages"][0]["steps"] == 3  # the caller's recipe untouched
    replayed = ship("pgan3d-phantom", card["recipe"], tmp_path / "replayed", tmp_path / "work2")
    assert (replayed / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()
    assert json.loads((replayed / "model.json").read_text())["recipe"] == card["recipe"]


@pytest.mark.slow
def test_a_pool_recipe_builds_its_pool_in_parts_and_generates_no_unused_set(tmp_path):
    grid = {"shape": [24, 28, 24], "spacing": 8.0}
    recipe = {
        "data": {"model": "phantom", "n": 2, "seed": 1, "channels": "t1,seg", "shape": [8, 8, 8], "spacing": [10.0, 10.0, 10.0]},
        "pools": {"p": {"parts": [{"tumour_cases": 1, "healthy_cases": 1, **grid}, {"tumour_cases": 1, "healthy_cases": 1, "seed": 99, **grid}]}},
        "stages": [{"out": "run", "model": "seg", "data": "pool:p", "resolution": 16, "spacing": 8.0, "width": 4, "steps": 2, "batch_size": 2,
                    "checkpoint_every": 2}],
        "ship": {"description": "a tiny pool", "licence": "CC0-1.0"},
    }
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"recipe": recipe}))
    out, work = tmp_path / "seg-phantom", tmp_path / "work"
    assert main(["seg", "--card", str(card), "--out", str(out), "--work", str(work)]) == 0
    assert sorted(p.name for p in work.iterdir()) == ["pool-p", "run"]  # no training set generated, no pool parts left
    assert json.loads((work / "pool-p" / "pool.json").read_text())["subjects"][2]["seed"] == 99
    shipped = json.loads((out / "model.json").read_text())
    assert shipped["recipe"] == recipe and "domain_randomisation" in shipped["preprocessing"]["training"]
    assert default_registry().family_for(str(out)).name == "seg"
