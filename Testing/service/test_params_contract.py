"""The engine's finetune job accepts exactly the options of `medsynth finetune` (FinetuneRequest)."""

import dataclasses

from medsynth_engine.jobs.params import FinetuneParams
from medsynth_engine.training.finetune import FinetuneRequest


def test_finetune_job_params_match_the_request_fields():
    request_fields = {f.name for f in dataclasses.fields(FinetuneRequest)}
    assert set(FinetuneParams.model_fields) == request_fields
