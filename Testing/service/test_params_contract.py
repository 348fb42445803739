"""The engine's finetune job accepts exactly the options of `medsynth finetune`: the shared request fields plus
every installed family's own options, derived from the families' trainers (not a hand-kept copy)."""

import dataclasses

import pytest
from medsynth_engine.jobs.params import FinetuneParams
from medsynth_engine.training.request import FinetuneRequest, family_options
from pydantic import ValidationError


def test_finetune_job_params_are_the_request_fields_and_the_family_options():
    # schedule_steps is the run's own record (kept in its checkpoint), not an option of the command or the job
    shared = {f.name for f in dataclasses.fields(FinetuneRequest)} - {"options", "schedule_steps"}
    derived = {spec.name for spec in family_options()}
    assert {"stage", "latent_downsample", "freeze_stages", "augment", "grad_checkpoint"} <= derived
    assert set(FinetuneParams.model_fields) == shared | derived


def test_a_family_option_keeps_its_declared_choices_in_the_schema():
    schema = FinetuneParams.model_json_schema()["properties"]["latent_downsample"]
    assert "ldm3d" in schema["description"]
    FinetuneParams(model="ldm3d", data="/d", latent_downsample=2)
    with pytest.raises(ValidationError):
        FinetuneParams(model="ldm3d", data="/d", latent_downsample=3)
