"""Warm models for in-engine generation: loaded once, kept for the next request, the least recently used dropped.

``ModelRegistry.get`` keeps every plugin it ever made; a long-running engine asked for many model folders
would grow without limit, so this cache owns the plugins instead and bounds how many stay loaded.
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict
from pathlib import Path

from ..registry import ModelPlugin, ModelRegistry

__all__ = ["ModelCache"]


class ModelCache:
    """At most ``max_models`` plugins stay loaded; ``get`` is safe to call from several threads."""

    def __init__(self, registry: ModelRegistry, max_models: int = 2) -> None:
        self.registry = registry
        self.max_models = max(1, int(max_models))
        self._plugins: OrderedDict[str, ModelPlugin] = OrderedDict()
        self._lock = threading.RLock()
        self.loads = 0

    def key(self, model: str) -> str:
        """Registered ids stay as they are; folders are keyed by their resolved path."""
        if model in self.registry.ids():
            return model
        return str(Path(model).expanduser().resolve())

    def get(self, model: str) -> ModelPlugin:
        key = self.key(model)
        with self._lock:
            if key in self._plugins:
                self._plugins.move_to_end(key)
                return self._plugins[key]
            plugin = self.registry.get(key)
            # The registry memoises every plugin; this cache decides what stays loaded instead.
            self.registry._instances.pop(key, None)
            self.loads += 1
            self._plugins[key] = plugin
            while len(self._plugins) > self.max_models:
                self._plugins.popitem(last=False)
                _release_memory()
            return plugin

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._plugins)

    def describe(self) -> list[dict]:
        """The registry's model table, made under the lock (plugins are created while describing)."""
        with self._lock:
            rows = self.registry.describe()
            for model_id in self.registry.ids():
                if model_id not in self._plugins:
                    self.registry._instances.pop(model_id, None)
            return rows


def _release_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        return
