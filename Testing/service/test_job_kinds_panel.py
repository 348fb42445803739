"""The panel checks requests against the params schema ``GET /job-kinds`` serves (``jobs/kinds``), before sending them."""

from __future__ import annotations

import pytest
from medsynth_engine.generate import MAX_CASES
from medsynth_engine.jobs.kinds import job_kinds

from MedSynthLib.controller import InputError, PanelController
from MedSynthLib.jobschema import SchemaError, check_params

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out


def test_the_engine_serves_every_job_kinds_params_schema(client):
    kinds = client.job_kinds()["kinds"]
    params = {name: kind.params for name, kind in job_kinds().items()}
    assert sorted(kinds) == sorted(params)
    for kind, model in params.items():
        assert sorted(kinds[kind]["params_schema"]["properties"]) == sorted(model.model_fields), kind
    assert kinds["generate"]["params_schema"]["properties"]["n"]["maximum"] == MAX_CASES


def test_served_schemas_take_what_the_engine_takes_and_refuse_what_it_refuses(client):
    kinds = client.job_kinds()["kinds"]
    check_params("generate", {"model": "phantom", "n": 20_000, "channels": ["t1"], "shape": [8, 8, 8]}, kinds)
    for kind, params, message in [
        ("generate", {"n": MAX_CASES + 1}, f"out of range; the engine takes from 1 to {MAX_CASES}"),
        ("generate", {"layout": "nifti"}, "choose one of brats, nnunet"),
        ("finetune", {"model": "pgan3d"}, "data is missing"),
        ("add-tumour", {"case": "/c", "mask": "/m", "margin_mm": 80.0}, "margin_mm 80 is out of range"),
        ("export", {"out": "/x", "colour": "red"}, "colour is not a parameter this engine takes"),
    ]:
        with pytest.raises(SchemaError, match=message):
            check_params(kind, params, kinds)


def test_the_panel_refuses_before_submitting_and_allows_what_the_engine_allows(engine):
    controller = PanelController()
    controller.connect(engine.url, token_file=str(engine.token_file))
    assert controller.param_limit("generate", "n", "maximum") == MAX_CASES  # the panel's spin box follows it
    before = len(controller.session.client.jobs())
    with pytest.raises(InputError, match=f"n {MAX_CASES + 1} is out of range"):
        controller.generate(model="phantom", count=MAX_CASES + 1, seed=0, channels="t1", tumour=False)
    assert len(controller.session.client.jobs()) == before  # nothing was sent


def test_the_panel_offers_resume_for_the_kinds_the_engine_resumes(engine):
    controller = PanelController()
    controller.connect(engine.url, token_file=str(engine.token_file))
    assert [kind for kind in controller.job_kinds if controller.resumable(kind)] == ["generate", "finetune", "export"]
    controller.job_kinds = {}  # an engine from before GET /job-kinds: only fine-tunes resumed then
    assert controller.resumable("finetune") and not controller.resumable("generate")
