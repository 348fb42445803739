"""The plugin registry: built-ins, third-party entry points, model folders, and their failures."""

from __future__ import annotations

import importlib
import sys
import textwrap

import numpy as np
import pytest
from medsynth_engine.errors import MedSynthError
from medsynth_engine.modelfile import ModelCard, save_model_folder
from medsynth_engine.registry import ModelRegistry, default_registry


@pytest.fixture
def third_party_plugin(tmp_path, monkeypatch):
    """A real installed-looking distribution (dist-info with entry points) on sys.path."""
    pkg = tmp_path / "acme_synth"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            '''
            import numpy as np
            from medsynth_engine.modelfile import ModelCard
            from medsynth_engine.registry import ModelPlugin, SynthCase

            class Constant(ModelPlugin):
                def __init__(self):
                    self.card = ModelCard(id="acme-constant", kind="procedural", architecture={"name": "constant"},
                                          channels=["t1"], shape=[8, 8, 8], spacing=[2.0, 2.0, 2.0],
                                          training_data="none", licence="MIT")

                def generate(self, *, seed, channels, shape, spacing, tumour, device):
                    return SynthCase({"t1": np.full(shape, seed % 100, dtype=np.int16)}, np.diag([2.0, 2.0, 2.0, 1.0]))
            '''
        )
    )
    (pkg / "broken.py").write_text("raise ImportError('acme needs a library that is not installed')\n")
    dist = tmp_path / "acme_synth-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-synth\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text(
        "[medsynth.models]\nacme-constant = acme_synth:Constant\nacme-broken = acme_synth.broken:Model\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield
    for name in [m for m in sys.modules if m.startswith("acme_synth")]:
        del sys.modules[name]


def test_builtin_phantom_is_listed_with_its_card():
    rows = {row["id"]: row for row in default_registry().describe()}
    phantom = rows["phantom"]
    assert phantom["kind"] == "procedural"
    assert phantom["channels"] == ["t1", "t1ce", "t2", "flair", "seg", "ct"]
    assert len(phantom["shape"]) == 3 and phantom["spacing"] == [1.0, 1.0, 1.0]
    assert "MNI ICBM152" in phantom["weights"] and len(phantom["weights_sha256"]) == 64


def test_entry_point_plugins_are_found_and_broken_ones_reported(third_party_plugin):
    registry = default_registry()
    assert "acme-constant" in registry.ids()
    case = registry.get("acme-constant").generate(seed=42, channels=("t1",), shape=(8, 8, 8), spacing=(2.0,) * 3, tumour=False, device="cpu")
    assert (case.arrays["t1"] == 42).all()
    rows = {row["id"]: row for row in registry.describe()}
    assert rows["acme-constant"]["weights"] == "plugin acme-synth 1.2.3"
    assert "not installed" in rows["acme-broken"]["error"]
    with pytest.raises(MedSynthError, match="failed to load"):
        registry.get("acme-broken")


def test_registries_are_independent_objects():
    a, b = ModelRegistry(), default_registry()
    assert a.ids() == [] and "phantom" in b.ids()


def test_unknown_model_and_duplicate_ids_are_refused():
    registry = default_registry()
    with pytest.raises(MedSynthError, match="Unknown model 'nope'.*phantom"):
        registry.get("nope")
    with pytest.raises(MedSynthError, match="Two plugins"):
        registry.register("phantom", lambda: None)


def test_model_folder_loads_through_its_architecture(tmp_path):
    import torch
    from medsynth_engine.modelfile import load_model_folder
    from medsynth_engine.registry import ModelPlugin, SynthCase

    card = ModelCard(id="tiny", kind="gan", architecture={"name": "tiny-arch"}, channels=["t1"], shape=[4, 4, 4],
                     spacing=[1.0, 1.0, 1.0], training_data="phantom", licence="CC0")
    save_model_folder(tmp_path / "m", card, {"w": torch.arange(64, dtype=torch.float32).reshape(4, 4, 4)})

    from medsynth_engine.contract import ModelFamily

    class Tiny(ModelPlugin):
        def __init__(self, folder):
            self.card, self.w = load_model_folder(folder)

        def generate(self, **kw):
            return SynthCase({"t1": self.w["w"].numpy()}, np.eye(4))

    registry = ModelRegistry()
    with pytest.raises(MedSynthError, match="needs the 'tiny-arch' architecture"):
        registry.get(str(tmp_path / "m"))
    registry.add_family(ModelFamily(name="tiny", architecture="tiny-arch", kind="gan", summary="a test family", load=Tiny))
    plugin = registry.get(str(tmp_path / "m"))
    assert plugin.generate().arrays["t1"][3, 3, 3] == 63
    assert plugin.weights_origin.startswith("folder ") and plugin.family.name == "tiny"
    with pytest.raises(MedSynthError, match="both claim the architecture 'tiny-arch'"):
        registry.add_family(ModelFamily(name="tiny2", architecture="tiny-arch", kind="gan", summary="a clash", load=Tiny))


def test_forget_drops_the_loaded_plugin_so_it_loads_afresh():
    registry = default_registry()
    first = registry.get("phantom")
    assert registry.get("phantom") is first
    registry.forget("phantom")
    registry.forget("never-loaded")
    assert registry.get("phantom") is not first


def test_a_channel_model_is_not_a_generator():
    registry = default_registry()
    assert "seg-phantom" in registry.ids("channel") and "seg-phantom" not in registry.ids()
    with pytest.raises(MedSynthError, match="'seg-phantom' is a seg channel model; use it with medsynth add-channel --channel seg"):
        registry.generator("seg-phantom")
    assert registry.generator("phantom").family.name == "phantom"
