"""Warm models for in-engine generation: loaded once, kept for the next request, the least recently used dropped.

``ModelRegistry.get`` keeps every plugin it ever made; a long-running engine asked for many model folders
would grow without limit, so this cache owns the plugins instead and bounds them twice: at most
``max_models`` plugins, and at most ``max_bytes`` of arrays and tensors (weights, atlases) held by them.
The most recently used model always stays, whatever its size.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from ..registry import ModelPlugin, ModelRegistry

__all__ = ["ModelCache", "plugin_bytes"]


class ModelCache:
    """An LRU of loaded plugins; ``get`` is safe to call from several threads."""

    def __init__(self, registry: ModelRegistry, max_models: int = 2, max_bytes: int | None = None) -> None:
        self.registry = registry
        self.max_models = max(1, int(max_models))
        self.max_bytes = max_bytes
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
                self._evict()  # a plugin may have grown since it was loaded (lazy atlases, lazy weights)
                return self._plugins[key]
            plugin = self.registry.get(key)
            # The registry memoises every plugin; this cache decides what stays loaded instead.
            self.registry.forget(key)
            self.loads += 1
            self._plugins[key] = plugin
            self._evict()
            return plugin

    def generator(self, model: str) -> ModelPlugin:
        """Like :meth:`get`, refusing a channel model (the registry's check, made before anything loads)."""
        self.registry.check_generator(model)
        return self.get(model)

    def _evict(self) -> None:
        dropped = False
        while len(self._plugins) > 1 and (len(self._plugins) > self.max_models or self._over_budget()):
            self._plugins.popitem(last=False)
            dropped = True
        if dropped:
            _release_memory()

    def _over_budget(self) -> bool:
        return self.max_bytes is not None and sum(plugin_bytes(p) for p in self._plugins.values()) > self.max_bytes

    def loaded(self) -> list[str]:
        with self._lock:
            return list(self._plugins)

    def describe(self) -> list[dict]:
        """The registry's model table plus ``warm`` (loaded in this engine now), made under the lock."""
        with self._lock:
            rows = self.registry.describe()
            for model_id in self.registry.ids():
                if model_id not in self._plugins:
                    self.registry.forget(model_id)
            for row in rows:
                row["warm"] = row["id"] in self._plugins
            return rows


def plugin_bytes(plugin: Any, depth: int = 5) -> int:
    """Bytes of the numpy arrays and torch tensors (module parameters and buffers included) a plugin holds."""
    torch = sys.modules.get("torch")
    seen: set[int] = set()
    total = 0

    def visit(obj: Any, level: int) -> None:
        nonlocal total
        if level > depth or id(obj) in seen or obj is None or isinstance(obj, str | bytes | int | float | bool):
            return
        seen.add(id(obj))
        if isinstance(obj, np.ndarray):
            total += obj.nbytes
        elif torch is not None and isinstance(obj, torch.Tensor):
            total += obj.numel() * obj.element_size()
        elif torch is not None and isinstance(obj, torch.nn.Module):
            for tensor in [*obj.parameters(), *obj.buffers()]:
                visit(tensor, level + 1)
        elif isinstance(obj, dict):
            for value in obj.values():
                visit(value, level + 1)
        elif isinstance(obj, list | tuple | set):
            for value in obj:
                visit(value, level + 1)
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            for value in vars(obj).values():
                visit(value, level + 1)

    visit(plugin, 0)
    return total


def _release_memory() -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
