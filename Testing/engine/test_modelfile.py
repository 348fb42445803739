"""Model files: safetensors plus a JSON card, checked by hash, never unpickled."""

from __future__ import annotations

import json
import os
import pickle

import pytest
import torch
from medsynth_engine.errors import MedSynthError
from medsynth_engine.modelfile import ModelCard, load_model_folder, save_model_folder


def _card() -> ModelCard:
    return ModelCard(id="m", kind="gan", architecture={"name": "x", "width": 8}, channels=["t1", "seg"], shape=[16, 16, 16],
                     spacing=[2.0, 2.0, 2.0], training_data="phantom cases", licence="CC-BY-4.0", metrics={"ms_ssim": 0.4})


def test_roundtrip_keeps_tensors_and_card(tmp_path):
    tensors = {"a": torch.randn(3, 4), "b.c": torch.arange(5)}
    save_model_folder(tmp_path, _card(), tensors)
    card, loaded = load_model_folder(tmp_path)
    assert card.architecture == {"name": "x", "width": 8} and card.metrics == {"ms_ssim": 0.4}
    assert card.software_version and len(card.weights["sha256"]) == 64
    assert all(torch.equal(tensors[k], loaded[k]) for k in tensors)
    assert sorted(os.listdir(tmp_path)) == ["model.json", "model.safetensors"]  # no temporary files left


def test_changed_weights_are_refused(tmp_path):
    save_model_folder(tmp_path, _card(), {"a": torch.zeros(4)})
    with open(tmp_path / "model.safetensors", "r+b") as handle:
        handle.seek(-1, os.SEEK_END)
        handle.write(b"\x01")
    with pytest.raises(MedSynthError, match="does not match the SHA-256"):
        load_model_folder(tmp_path)


def test_a_pickle_posing_as_weights_is_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    card = _card()
    card.weights = {"file": "model.safetensors"}  # no hash: only the format check stands between
    (tmp_path / "model.json").write_text(json.dumps(card.to_dict()))
    (tmp_path / "model.safetensors").write_bytes(pickle.dumps(Evil()))
    with pytest.raises(MedSynthError, match="not a readable safetensors file"):
        load_model_folder(tmp_path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.pop("licence"), "lacks the field"),
        (lambda d: d.update(kind="magic"), "kind 'magic'"),
        (lambda d: d.update(architecture={}), "no architecture name"),
        (lambda d: d.update(shape=[1, 2, 3, 4]), "3D"),
        (lambda d: d.update(shape=[1, 2]), "same length"),
    ],
)
def test_bad_cards_are_refused_with_a_sentence(tmp_path, mutate, message):
    data = _card().to_dict()
    mutate(data)
    (tmp_path / "model.json").write_text(json.dumps(data))
    with pytest.raises(MedSynthError, match=message):
        load_model_folder(tmp_path)


def test_card_that_is_not_json_is_refused(tmp_path):
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(MedSynthError, match="not valid JSON"):
        load_model_folder(tmp_path)
