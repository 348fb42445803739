"""``medsynth finetune --model X`` picks the trainer of X's family."""

from __future__ import annotations

import json

import pytest
from medsynth_engine.errors import MedSynthError
from medsynth_engine.training.families import family_of
from medsynth_engine.training.finetune import FinetuneRequest, run_finetune


@pytest.mark.parametrize("model", ["pgan3d", "seg", "mr2ct", "ldm3d"])
def test_scratch_ids_are_their_own_family(model):
    assert family_of(model) == model


def test_a_model_folder_trains_in_the_family_of_its_architecture(tmp_path):
    for arch, family in [("segnet", "seg"), ("mr2ct", "mr2ct"), ("ldm3d", "ldm3d"), ("pgan3d", "pgan3d")]:
        folder = tmp_path / arch
        folder.mkdir()
        (folder / "model.json").write_text(json.dumps({"id": arch, "architecture": {"name": arch}}))
        assert family_of(str(folder)) == family


def test_shipped_generators_resolve_through_the_registry():
    assert family_of("pgan3d-phantom") == "pgan3d"
    assert family_of("no-such-model") == "pgan3d"  # pgan3d's base resolution names the choices


def test_stage_is_refused_for_single_stage_pgan3d(tmp_path):
    request = FinetuneRequest(model="pgan3d", data=tmp_path, out=tmp_path / "out", stage="diffusion")
    with pytest.raises(MedSynthError, match="--stage is for multi-stage models"):
        run_finetune(request)


def test_the_finished_run_names_the_command_that_uses_the_model(tmp_path):
    from medsynth_engine.commands.finetune import _usage

    for arch, expected in [("segnet", "add-channel --channel seg"), ("mr2ct", "add-channel --channel ct"), ("ldm3d", "generate")]:
        folder = tmp_path / arch
        folder.mkdir()
        (folder / "model.json").write_text(json.dumps({"id": arch, "architecture": {"name": arch}}))
        assert f"medsynth {expected} --model {folder}" in _usage(folder)
