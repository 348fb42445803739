"""``medsynth finetune --model X`` runs the trainer of X's family, found through the registry."""

from __future__ import annotations

import json

import pytest
from medsynth_engine.errors import MedSynthError
from medsynth_engine.registry import default_registry
from medsynth_engine.training.finetune import FinetuneRequest, run_finetune


@pytest.fixture(scope="module")
def registry():
    return default_registry()


@pytest.mark.parametrize("model", ["pgan3d", "seg", "mr2ct", "ldm3d"])
def test_family_names_train_new_models_of_that_family(registry, model):
    assert registry.family_for(model).name == model and registry.family_for(model).trainer is not None


def test_a_model_folder_trains_in_the_family_of_its_architecture(registry, tmp_path):
    for arch, family in [("segnet", "seg"), ("mr2ct", "mr2ct"), ("ldm3d", "ldm3d"), ("pgan3d", "pgan3d")]:
        folder = tmp_path / arch
        folder.mkdir()
        (folder / "model.json").write_text(json.dumps({"id": arch, "architecture": {"name": arch}}))
        assert registry.family_for(str(folder)).name == family


def test_shipped_models_belong_to_their_family_and_unknown_names_are_refused(registry, tmp_path):
    assert registry.family_for("pgan3d-phantom").name == "pgan3d"
    assert registry.family_for("seg-phantom").capabilities.channel == "seg"
    with pytest.raises(MedSynthError, match="Unknown model 'no-such-model'.*pgan3d"):
        registry.family_for("no-such-model")
    folder = tmp_path / "alien"
    folder.mkdir()
    (folder / "model.json").write_text(json.dumps({"architecture": {"name": "alien"}}))
    with pytest.raises(MedSynthError, match="needs the 'alien' architecture"):
        registry.family_for(str(folder))


def test_an_option_of_another_family_is_refused_naming_its_owners(tmp_path):
    request = FinetuneRequest.make(model="pgan3d", data=tmp_path, out=tmp_path / "out", stage="diffusion")
    with pytest.raises(MedSynthError, match="--stage is for ldm3d, mr2ct models; pgan3d is a pgan3d model"):
        run_finetune(request)
    with pytest.raises(MedSynthError, match="Unknown training option --wobble"):
        run_finetune(FinetuneRequest.make(model="pgan3d", data=tmp_path, out=tmp_path / "out", wobble=3))


def test_an_option_value_is_checked_against_its_declaration(tmp_path):
    request = FinetuneRequest.make(model="ldm3d", data=tmp_path, out=tmp_path / "out", latent_downsample=3)
    with pytest.raises(MedSynthError, match="--latent-downsample must be one of 2, 4, 8, not 3"):
        run_finetune(request)


def test_the_phantom_family_does_not_train(tmp_path):
    with pytest.raises(MedSynthError, match="'phantom' model family does not train"):
        run_finetune(FinetuneRequest.make(model="phantom", data=tmp_path, out=tmp_path / "out"))


def test_the_finished_run_names_the_command_that_uses_the_model(tmp_path):
    from medsynth_engine.commands.finetune import _usage

    for arch, expected in [("segnet", "add-channel --channel seg"), ("mr2ct", "add-channel --channel ct"), ("ldm3d", "generate")]:
        folder = tmp_path / arch
        folder.mkdir()
        (folder / "model.json").write_text(json.dumps({"id": arch, "architecture": {"name": arch}}))
        assert f"medsynth {expected} --model {folder}" in _usage(folder)


def test_a_checkpoint_refuses_names_that_would_overwrite_each_other(tmp_path):
    import torch
    from medsynth_engine.training.checkpoint import save_checkpoint

    class Clashing:
        steps_done, rng = 0, torch.Generator()

        def modules(self):
            return {"g": torch.nn.Linear(1, 1)}

        def optimisers(self):
            return {"g": torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=0.1)}

    with pytest.raises(MedSynthError, match=r"checkpoint names clash \(g\)"):
        save_checkpoint(tmp_path, Clashing(), {})
    assert not (tmp_path / "checkpoint").exists()
