"""Job kinds are one module each, found from ``jobs/kinds/``, and their params schema says what their code accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
from medsynth_engine.jobs import kinds as kinds_package
from medsynth_engine.jobs.kinds import KIND_MODULES, job_kinds
from medsynth_engine.jobs.schema import JobParams
from pydantic import ValidationError


def test_every_module_in_the_kinds_package_is_a_listed_kind():
    modules = {p.stem for p in Path(kinds_package.__file__).parent.glob("*.py") if p.stem != "__init__"}
    assert modules == set(KIND_MODULES)
    assert list(job_kinds()) == ["generate", "finetune", "export", "add-channel", "add-tumour", "progress", "prepare"]
    with pytest.raises(TypeError):
        job_kinds()["teleport"] = job_kinds()["generate"]  # read-only: no registry to mutate at run time


@pytest.mark.parametrize("name", list(job_kinds()))
def test_each_kind_serves_the_schema_of_the_params_it_checks(name):
    kind = job_kinds()[name]
    assert issubclass(kind.params, JobParams) and kind.name == name
    served = kind.describe()
    assert set(served["params_schema"]["properties"]) == set(kind.params.model_fields)
    assert served["params_schema"]["additionalProperties"] is False
    assert served["lane"] in ("kind", "device") and served["runs_in"] in ("engine", "worker")
    with pytest.raises(ValidationError):
        kind.params.model_validate({"no_such_option": 1})


@pytest.mark.parametrize(
    "params",
    [{"n": "5"}, {"n": True}, {"seed": 2.5}, {"channels": "T1"}, {"channels": ["t1", "t1"]}, {"out": "relative"},
     {"device": "tpu"}, {"shape": [16, 16]}, {"spacing": 0}],
)
def test_generate_refuses_what_its_schema_forbids(params):
    with pytest.raises(ValidationError):
        job_kinds()["generate"].params.model_validate(params)


def test_generate_takes_json_integers_and_either_form_of_channels_and_grids():
    params = job_kinds()["generate"].params.model_validate({"seed": 210.0, "channels": " seg ,t1", "shape": 16, "spacing": 8})
    assert (params.seed, params.channels, params.shape, params.spacing) == (210, ["t1", "seg"], [16] * 3, [8.0] * 3)
