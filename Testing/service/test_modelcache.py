"""The warm-model cache: least recently used plugins dropped by count and by the memory they hold."""

from __future__ import annotations

import pytest
from medsynth_engine.jobs.modelcache import ModelCache, plugin_bytes
from medsynth_engine.models.phantom import PhantomModel
from medsynth_engine.registry import ModelRegistry

pytestmark = pytest.mark.slow  # real engines, training steps or rendered sets: make test-fast leaves it out


@pytest.fixture(scope="module")
def atlas_loader(registry):
    """The session phantom's atlas loader, loaded once (building an atlas takes seconds)."""
    loader = registry.get("phantom").atlas
    loader.get()
    return loader


def _registry(n: int, atlas_loader=None) -> ModelRegistry:
    def make() -> PhantomModel:
        model = PhantomModel()
        if atlas_loader is not None:
            model.atlas = atlas_loader
        return model

    registry = ModelRegistry()
    for i in range(n):
        registry.register(f"phantom-{i}", make)
    return registry


def test_models_stay_warm_and_the_least_recently_used_goes_first():
    cache = ModelCache(_registry(3), max_models=2)
    first = cache.get("phantom-0")
    assert cache.get("phantom-0") is first and cache.loads == 1
    cache.get("phantom-1")
    cache.get("phantom-0")
    cache.get("phantom-2")
    assert cache.loaded() == ["phantom-0", "phantom-2"]
    assert cache.registry._instances == {}, "the registry must not keep evicted plugins alive"
    assert cache.get("phantom-1") is not None and cache.loads == 4


def test_memory_budget_counts_what_plugins_hold(atlas_loader):
    assert plugin_bytes(PhantomModel()) == 0, "an unloaded phantom holds no arrays"
    cache = ModelCache(_registry(2, atlas_loader), max_models=5, max_bytes=1)
    held = plugin_bytes(cache.get("phantom-0"))
    assert held > 10 << 20, "the phantom's loaded atlas is counted"
    cache.get("phantom-1")
    assert cache.loaded() == ["phantom-1"], "over budget: only the newest model stays"
    roomy = ModelCache(_registry(2, atlas_loader), max_models=5, max_bytes=4 * held)
    roomy.get("phantom-0")
    roomy.get("phantom-1")
    assert roomy.loaded() == ["phantom-0", "phantom-1"]
