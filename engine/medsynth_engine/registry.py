"""Model plugins and the registry that finds them: built-ins plus the ``medsynth.models`` entry-point group.

A plugin is an object with a ``card`` (``ModelCard``) and ``generate(...)``. Third-party packages add
models by declaring, in their packaging metadata::

    [project.entry-points."medsynth.models"]
    my-model = "my_package.plugin:MyModel"   # a zero-argument callable returning a ModelPlugin

Folders written by training (``model.json`` + ``model.safetensors``) load through an *architecture
loader* that a plugin module registers for its ``architecture.name``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .errors import MedSynthError
from .modelfile import CARD_FILE, ModelCard, read_card

__all__ = ["ENTRY_POINT_GROUP", "BUILTIN_PLUGIN_MODULES", "ModelPlugin", "SynthCase", "ModelRegistry", "default_registry"]

ENTRY_POINT_GROUP = "medsynth.models"
#: Modules of built-in plugins; each has ``register(registry)``.
BUILTIN_PLUGIN_MODULES: tuple[str, ...] = (
    "medsynth_engine.models.phantom",
    "medsynth_engine.models.pgan3d",
    "medsynth_engine.models.ldm3d",
)


@dataclass
class SynthCase:
    """One generated case: arrays by channel on one grid, its RAS affine, and what made it."""

    arrays: dict[str, np.ndarray]
    affine: np.ndarray
    params: dict[str, Any] = field(default_factory=dict)


class ModelPlugin(ABC):
    """A generative model MedSynth can run."""

    card: ModelCard
    #: Where the weights came from, in words (shown by ``medsynth models``).
    weights_origin: str = ""
    #: Whether ``generate`` takes ``mask=`` (a NIfTI tumour label map the case must follow); only then is it passed.
    supports_mask: bool = False

    @property
    def id(self) -> str:
        return self.card.id

    def weights_sha256(self) -> str:
        return str(self.card.weights.get("sha256", ""))

    def check_request(self, *, channels: tuple[str, ...], shape: tuple[int, int, int], spacing: tuple[float, float, float]) -> None:
        """Raise MedSynthError if this model cannot make the requested channels, shape or spacing."""
        missing = [c for c in channels if c not in self.card.channels]
        if missing:
            raise MedSynthError(
                f"Model '{self.id}' cannot make channel(s) {', '.join(missing)}; it makes {', '.join(self.card.channels)}."
            )
        if tuple(shape) != tuple(self.card.shape) or tuple(spacing) != tuple(self.card.spacing):
            raise MedSynthError(
                f"Model '{self.id}' makes {tuple(self.card.shape)} voxels at {tuple(self.card.spacing)} mm only; "
                "leave out --shape and --spacing."
            )

    @abstractmethod
    def generate(
        self,
        *,
        seed: int,
        channels: tuple[str, ...],
        shape: tuple[int, int, int],
        spacing: tuple[float, float, float],
        tumour: bool,
        device: Any,
    ) -> SynthCase:
        """Make one case; the same arguments must give identical voxels."""


PluginFactory = Callable[[], ModelPlugin]
FolderLoader = Callable[[Path, ModelCard], ModelPlugin]


class ModelRegistry:
    """Known models by id, architecture loaders for model folders, and plugins that failed to load."""

    def __init__(self) -> None:
        self._factories: dict[str, tuple[PluginFactory, str]] = {}
        self._loaders: dict[str, FolderLoader] = {}
        self._instances: dict[str, ModelPlugin] = {}
        self.broken: dict[str, str] = {}

    def register(self, model_id: str, factory: PluginFactory, *, origin: str = "built-in") -> None:
        if model_id in self._factories:
            raise MedSynthError(f"Two plugins claim the model id '{model_id}'.")
        self._factories[model_id] = (factory, origin)

    def register_architecture(self, name: str, loader: FolderLoader) -> None:
        self._loaders[name] = loader

    def load_builtins(self) -> None:
        for module in BUILTIN_PLUGIN_MODULES:
            importlib.import_module(module).register(self)

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Add third-party plugins; a broken one is recorded in ``broken`` instead of failing the rest."""
        for entry in importlib.metadata.entry_points(group=group):
            if entry.name in self._factories:
                self.broken[entry.name] = "its id is already taken by another plugin"
                continue
            try:
                factory = entry.load()
            except Exception as exc:  # a third-party import error must not break MedSynth
                self.broken[entry.name] = f"{exc.__class__.__name__}: {exc}"
                continue
            dist = getattr(entry, "dist", None)
            origin = f"plugin {dist.name} {dist.version}" if dist is not None else f"plugin {entry.value}"
            self.register(entry.name, factory, origin=origin)

    def ids(self) -> list[str]:
        return sorted(self._factories)

    def get(self, id_or_folder: str) -> ModelPlugin:
        """The plugin for a model id, or for a model folder (a path holding ``model.json``)."""
        if id_or_folder in self._instances:
            return self._instances[id_or_folder]
        if id_or_folder in self._factories:
            factory, origin = self._factories[id_or_folder]
            plugin = factory()
            if not isinstance(plugin, ModelPlugin):
                raise MedSynthError(f"The plugin for '{id_or_folder}' ({origin}) did not return a MedSynth model.")
            plugin.weights_origin = plugin.weights_origin or origin
        elif (Path(id_or_folder) / CARD_FILE).is_file():
            folder = Path(id_or_folder).resolve()
            card = read_card(folder)
            name = card.architecture["name"]
            if name not in self._loaders:
                raise MedSynthError(f"The model folder {folder} needs the '{name}' architecture, which no installed plugin provides.")
            plugin = self._loaders[name](folder, card)
            plugin.weights_origin = plugin.weights_origin or f"folder {folder}"
        elif id_or_folder in self.broken:
            raise MedSynthError(f"The model plugin '{id_or_folder}' failed to load: {self.broken[id_or_folder]}.")
        else:
            known = ", ".join(self.ids()) or "none"
            raise MedSynthError(f"Unknown model '{id_or_folder}'; known models: {known} (or give a model folder).")
        self._instances[id_or_folder] = plugin
        return plugin

    def forget(self, id_or_folder: str) -> None:
        """Drop the loaded plugin object (its weights) so the next ``get`` loads it afresh; unknown ids are ignored."""
        self._instances.pop(id_or_folder, None)

    def describe(self) -> list[dict[str, Any]]:
        """One row per model for ``medsynth models``: id, kind, channels, shape, spacing, weights origin."""
        rows = []
        for model_id in self.ids():
            try:
                plugin = self.get(model_id)
            except MedSynthError as exc:
                rows.append({"id": model_id, "error": str(exc)})
                continue
            card = plugin.card
            rows.append(
                {
                    "id": model_id,
                    "kind": card.kind,
                    "channels": list(card.channels),
                    "shape": list(card.shape),
                    "spacing": list(card.spacing),
                    "weights": plugin.weights_origin,
                    "weights_sha256": plugin.weights_sha256(),
                    "validity": card.metrics.get("validity"),
                }
            )
        for name, reason in sorted(self.broken.items()):
            rows.append({"id": name, "error": reason})
        return rows


def default_registry(*, entry_points: bool = True) -> ModelRegistry:
    """A registry with the built-in models and, unless disabled, installed third-party plugins."""
    registry = ModelRegistry()
    registry.load_builtins()
    if entry_points:
        registry.load_entry_points()
    return registry
