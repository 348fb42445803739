"""MedSynthLib's JSON-Schema subset validator: one case per keyword the engine's params schemas use (runs on 3.9)."""

from __future__ import annotations

import pytest

from MedSynthLib.jobschema import SchemaError, check_params, validate

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["model"],
    "properties": {
        "model": {"type": "string", "minLength": 1, "maxLength": 8, "pattern": "^[a-z0-9-]+$"},
        "n": {"type": "integer", "minimum": 1, "maximum": 1000000},
        "seed": {"type": "integer", "minimum": 0, "exclusiveMaximum": 2**63},
        "layout": {"enum": ["brats", "nnunet"]},
        "margin_mm": {"anyOf": [{"type": "number", "exclusiveMinimum": 0, "maximum": 50}, {"type": "null"}]},
        "shape": {"anyOf": [{"type": "integer"}, {"$ref": "#/$defs/triple"}, {"type": "null"}]},
        "tumour": {"type": "boolean"},
    },
    "$defs": {"triple": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 3, "maxItems": 3}},
}


def test_a_valid_request_passes():
    validate({"model": "phantom", "n": 20000, "seed": 0, "layout": "nnunet", "margin_mm": None, "shape": [8, 8, 8],
              "tumour": False}, SCHEMA)
    validate({"model": "ldm3d", "margin_mm": 8, "shape": 64}, SCHEMA)


@pytest.mark.parametrize(
    "params, message",
    [
        ({}, "model is missing"),
        ({"model": "phantom", "size": 3}, "size is not a parameter this engine takes"),
        ({"model": 3}, "model must be text"),
        ({"model": ""}, "model is empty"),
        ({"model": "much-too-long"}, "longer than 8 characters"),
        ({"model": "Phantom!"}, "not in the expected form"),
        ({"model": "p", "n": 0}, "n 0 is out of range; the engine takes from 1 to 1000000"),
        ({"model": "p", "n": 2000000}, "n 2000000 is out of range; the engine takes from 1 to 1000000"),
        ({"model": "p", "n": True}, "n must be a whole number"),
        ({"model": "p", "n": 1.5}, "n must be a whole number"),
        ({"model": "p", "seed": 2**63}, "below"),
        ({"model": "p", "layout": "nifti"}, "layout is 'nifti'; choose one of brats, nnunet"),
        ({"model": "p", "margin_mm": 0}, "margin_mm 0 is out of range; the engine takes above 0"),
        ({"model": "p", "margin_mm": 80.0}, "margin_mm 80 is out of range; the engine takes at most 50"),
        ({"model": "p", "margin_mm": "8"}, "margin_mm must be a number or empty"),
        ({"model": "p", "shape": [8, 8]}, "shape needs at least 3 item(s)"),
        ({"model": "p", "shape": [8, 8, 8, 8]}, "shape takes at most 3 item(s)"),
        ({"model": "p", "shape": [8, 0, 8]}, "shape[1] 0 is out of range"),
    ],
)
def test_each_refusal_is_one_sentence_naming_the_field(params, message):
    with pytest.raises(SchemaError) as refused:
        validate(params, SCHEMA)
    assert message in str(refused.value)


def test_kinds_the_engine_did_not_describe_pass():
    kinds = {"generate": {"params_schema": SCHEMA}}
    with pytest.raises(SchemaError, match="n 0"):
        check_params("generate", {"model": "p", "n": 0}, kinds)
    check_params("export", {"anything": 1}, kinds)  # an older engine: it checks the request itself
    check_params("generate", {"anything": 1}, {})
