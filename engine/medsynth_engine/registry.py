"""The registry: the model families installed (built-in ones included) and the models they offer.

Every family, MedSynth's own included, arrives through the ``medsynth.models`` entry-point group (see
``contract.py``); there is no table of built-in modules. An entry point may also name a zero-argument
callable that returns one :class:`ModelPlugin` (a single model without a family). A plugin that fails to
load is recorded in ``broken`` and does not stop the others.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .contract import ModelFamily, ModelPlugin, SynthCase, resolve_ref
from .errors import MedSynthError
from .modelfile import CARD_FILE, read_card
from .weights import shipped_folder

__all__ = ["ENTRY_POINT_GROUP", "ModelPlugin", "SynthCase", "ModelRegistry", "default_registry"]

ENTRY_POINT_GROUP = "medsynth.models"

PluginFactory = Callable[[], ModelPlugin]


class ModelRegistry:
    """Families by name, the models they make by id, and plugins that failed to load."""

    def __init__(self) -> None:
        self._families: dict[str, tuple[ModelFamily, str]] = {}
        self._factories: dict[str, tuple[PluginFactory, str, ModelFamily | None, Path | None]] = {}
        self._instances: dict[str, Any] = {}
        self.broken: dict[str, str] = {}

    # -- registration -------------------------------------------------------------------------------
    def add_family(self, family: ModelFamily, *, origin: str = "built-in") -> None:
        """Add a family and the models it offers without a folder (built-in and shipped ids)."""
        if family.name in self._families:
            raise MedSynthError(f"Two plugins claim the model family '{family.name}'.")
        clash = [a for a, _ in self._families.values() if a.architecture == family.architecture]
        if clash:
            raise MedSynthError(f"The families '{clash[0].name}' and '{family.name}' both claim the architecture '{family.architecture}'.")
        self._families[family.name] = (family, origin)
        for model_id, factory in family.builtin.items():
            self.register(model_id, lambda ref=factory: resolve_ref(ref)(), origin=origin, family=family)
        for model_id in family.shipped:
            folder = shipped_folder(model_id)
            if folder is not None:
                where = "built-in" if origin == "built-in" else origin
                self.register(model_id, lambda f=folder: family.load_folder(f), origin=f"{where} (shipped weights)", family=family, folder=folder)

    def register(
        self, model_id: str, factory: PluginFactory, *, origin: str = "built-in", family: ModelFamily | None = None, folder: Path | None = None
    ) -> None:
        """Add a model id; ``folder`` (a model folder behind it) lets listings read its card without loading weights."""
        if model_id in self._factories:
            raise MedSynthError(f"Two plugins claim the model id '{model_id}'.")
        self._factories[model_id] = (factory, origin, family, folder)

    def load_entry_points(self, group: str = ENTRY_POINT_GROUP) -> None:
        """Add every installed family (MedSynth's own too) and single-model plugin."""
        for entry in sorted(importlib.metadata.entry_points(group=group), key=lambda e: e.name):
            dist = getattr(entry, "dist", None)
            own = dist is not None and dist.name.lower() == "medsynth"
            origin = "built-in" if own else (f"plugin {dist.name} {dist.version}" if dist is not None else f"plugin {entry.value}")
            try:
                loaded = entry.load()
                if isinstance(loaded, ModelFamily):
                    self.add_family(loaded, origin=origin)
                elif callable(loaded):
                    self.register(entry.name, loaded, origin=origin)
                else:
                    raise MedSynthError(f"{entry.value} is neither a ModelFamily nor a callable")
            except Exception as exc:  # a third-party import error must not break MedSynth
                self.broken[entry.name] = f"{exc.__class__.__name__}: {exc}"

    # -- look-up ------------------------------------------------------------------------------------
    def families(self) -> list[ModelFamily]:
        return [family for family, _ in sorted(self._families.values(), key=lambda item: item[0].name)]

    def family(self, name: str) -> ModelFamily:
        if name not in self._families:
            raise MedSynthError(f"Unknown model family '{name}'; installed: {', '.join(sorted(self._families)) or 'none'}.")
        return self._families[name][0]

    def family_for(self, model: str) -> ModelFamily:
        """The family of a family name (a new model), a model id, or a model folder."""
        if model in self._families:
            return self._families[model][0]
        if model in self._factories and self._factories[model][2] is not None:
            return self._factories[model][2]
        folder = Path(model) if (Path(model) / CARD_FILE).is_file() else shipped_folder(model)
        if folder is not None:
            name = _architecture_of(folder)
            for family, _ in self._families.values():
                if family.architecture == name:
                    return family
            raise MedSynthError(f"The model folder {folder} needs the '{name}' architecture, which no installed plugin provides.")
        trainable = ", ".join(f.name for f in self.families() if f.trainer) or "none"
        raise MedSynthError(f"Unknown model '{model}'; give a family to train a new model ({trainable}), a model id or a model folder.")

    def ids(self, role: str = "generator") -> list[str]:
        """Model ids by role: ``generator`` (``medsynth generate``) or ``channel`` (``add-channel``)."""
        def role_of(family: ModelFamily | None) -> str:
            return family.capabilities.role if family is not None else "generator"

        return sorted(model_id for model_id, (_, _, family, _) in self._factories.items() if role_of(family) == role)

    def get(self, id_or_folder: str) -> Any:
        """The loaded model for a model id or a model folder (a path holding ``model.json``)."""
        if id_or_folder in self._instances:
            return self._instances[id_or_folder]
        if id_or_folder in self._factories:
            factory, origin, family, _ = self._factories[id_or_folder]
            plugin = factory()
            if family is None and not isinstance(plugin, ModelPlugin):
                raise MedSynthError(f"The plugin for '{id_or_folder}' ({origin}) did not return a MedSynth model.")
        elif (Path(id_or_folder) / CARD_FILE).is_file():
            folder = Path(id_or_folder).resolve()
            family = self.family_for(str(folder))
            plugin = family.load_folder(folder)
            origin = f"folder {folder}"
        elif id_or_folder in self.broken:
            raise MedSynthError(f"The model plugin '{id_or_folder}' failed to load: {self.broken[id_or_folder]}.")
        else:
            known = ", ".join(self.ids()) or "none"
            raise MedSynthError(f"Unknown model '{id_or_folder}'; known models: {known} (or give a model folder).")
        if isinstance(plugin, ModelPlugin):
            plugin.weights_origin = plugin.weights_origin or origin
            plugin.family = plugin.family or family
        self._instances[id_or_folder] = plugin
        return plugin

    def generate_options(self, model: str) -> tuple[str, ...]:
        """The ``generate`` keywords beyond the contract's that a model takes (``truncation``, ``like``): its family's
        plugin class says (``ModelPlugin.generate_options``), so no weights are loaded; () for an unknown model."""
        try:
            family = self.family_for(model)
        except MedSynthError:
            return ()
        return tuple(getattr(resolve_ref(family.load), "generate_options", ())) if family.load is not None else ()

    def check_generator(self, id_or_folder: str) -> None:
        """Refuse a channel model where a generator is wanted (from the family alone: nothing is loaded)."""
        if id_or_folder in self._factories:
            family = self._factories[id_or_folder][2]
        elif (Path(id_or_folder) / CARD_FILE).is_file():
            family = self.family_for(id_or_folder)
        else:
            return  # unknown names are get()'s to refuse
        if family is not None and family.capabilities.channel:
            raise MedSynthError(
                f"'{id_or_folder}' is a {family.capabilities.channel} channel model; use it with "
                f"medsynth add-channel --channel {family.capabilities.channel}, not generate."
            )

    def generator(self, id_or_folder: str) -> ModelPlugin:
        """Like :meth:`get`, refusing channel models (they add channels, they do not generate cases)."""
        self.check_generator(id_or_folder)
        return self.get(id_or_folder)

    def forget(self, id_or_folder: str) -> None:
        """Drop the loaded plugin object (its weights) so the next ``get`` loads it afresh; unknown ids are ignored."""
        self._instances.pop(id_or_folder, None)

    def describe(self) -> list[dict[str, Any]]:
        """One row per generator for ``medsynth models`` and ``GET /models``: card summary, family, capabilities.

        Models with a folder are described from their card alone: listing never loads weights.
        """
        rows = []
        for model_id in self.ids():
            _, origin, family, folder = self._factories[model_id]
            try:
                if folder is not None:
                    card, sha, origin = read_card(folder), None, origin
                else:
                    plugin = self.get(model_id)
                    card, sha, origin = plugin.card, plugin.weights_sha256(), plugin.weights_origin
            except MedSynthError as exc:
                rows.append({"id": model_id, "error": str(exc)})
                continue
            capabilities = family.capabilities.to_json() if family else {"dims": len(card.shape), "mask": False, "inpaint": False, "channel": None}
            rows.append(
                {
                    "id": model_id,
                    "kind": card.kind,
                    "family": family.name if family else None,
                    "capabilities": capabilities,
                    "channels": list(card.channels),
                    "shape": list(card.shape),
                    "spacing": list(card.spacing),
                    "weights": origin,
                    "weights_sha256": sha if sha is not None else str(card.weights.get("sha256", "")),
                    "validity": card.metrics.get("validity"),
                    "generate_options": list(self.generate_options(model_id)),
                }
            )
        for name, reason in sorted(self.broken.items()):
            rows.append({"id": name, "error": reason})
        return rows


def _architecture_of(folder: Path) -> str:
    """``architecture.name`` of a model folder's card (only that: the family's loader checks the rest)."""
    try:
        name = json.loads((folder / CARD_FILE).read_text())["architecture"]["name"]
    except (OSError, ValueError, KeyError, TypeError):
        raise MedSynthError(f"The model card {folder / CARD_FILE} is not readable or names no architecture.") from None
    return str(name)


def default_registry() -> ModelRegistry:
    """A registry holding every installed family and plugin (built-ins arrive through entry points too)."""
    registry = ModelRegistry()
    registry.load_entry_points()
    return registry
