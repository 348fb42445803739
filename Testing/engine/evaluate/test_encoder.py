"""The evaluator's feature extractor is a frozen copy, not whatever seg-phantom ships today."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from medsynth_engine.errors import MedSynthError
from medsynth_engine.evaluate import encoder
from medsynth_engine.evaluate.encoder import ENCODER_DIR, ENCODER_SHA256, SegEncoder
from safetensors.torch import load_file, save_file


def test_the_encoder_loads_its_frozen_weights_and_refuses_others(tmp_path, monkeypatch):
    enc = SegEncoder()
    rng = np.random.default_rng(0)
    volume = np.clip(rng.normal(0.0, 0.3, (2, 24, 24, 24)), -1, 1).astype(np.float32)
    features = enc.features(volume, ("t1", "flair"))
    assert features.shape == (2 * 128,) and np.isfinite(features).all()
    np.testing.assert_array_equal(features, SegEncoder().features(volume, ("t1", "flair")))
    assert json.loads((ENCODER_DIR / "model.json").read_text())["weights"]["sha256"] == ENCODER_SHA256
    # Any other weights (a retrained segmenter, a changed file with a matching card) are refused, not used.
    other = tmp_path / "encoder_weights"
    shutil.copytree(ENCODER_DIR, other)
    tensors = load_file(str(other / "model.safetensors"))
    name = next(iter(tensors))
    tensors[name] = tensors[name] * 1.01
    save_file(tensors, str(other / "model.safetensors"))
    card = json.loads((other / "model.json").read_text())
    card["weights"]["sha256"] = hashlib.sha256((other / "model.safetensors").read_bytes()).hexdigest()  # a consistent folder
    (other / "model.json").write_text(json.dumps(card))
    monkeypatch.setattr(encoder, "ENCODER_DIR", other)
    with pytest.raises(MedSynthError, match="not the frozen one"):
        SegEncoder()
