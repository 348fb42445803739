"""Which trainer ``medsynth finetune --model X`` runs: pgan3d's GAN trainer, or another model family's.

A family module exposes ``train(request, progress=None, should_stop=None) -> Path`` with the same contract
as :func:`~medsynth_engine.training.finetune.run_finetune` (a usable model folder from the first checkpoint
on, exact ``--resume``, ``loss.jsonl``, progress dicts, never raising on stop).
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

__all__ = ["FAMILY_MODULES", "ARCHITECTURE_FAMILY", "family_of", "family_module"]

#: Scratch ids (``--model seg`` trains a new model) and the module that trains each family.
FAMILY_MODULES: dict[str, str] = {
    "pgan3d": "medsynth_engine.training.finetune",
    "seg": "medsynth_engine.models.segnet.train",
    "mr2ct": "medsynth_engine.models.mr2ct.train",
    "ldm3d": "medsynth_engine.models.ldm3d.train",
}
#: ``architecture.name`` in a model card -> the family that continues training it.
ARCHITECTURE_FAMILY: dict[str, str] = {"pgan3d": "pgan3d", "segnet": "seg", "mr2ct": "mr2ct", "ldm3d": "ldm3d"}
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


def family_of(model: str) -> str:
    """The family of a scratch id, a model folder, a shipped model id or a registered generator id.

    Unknown names fall to ``pgan3d``, whose base resolution names the choices in its error.
    """
    if model in FAMILY_MODULES:
        return model
    for folder in (Path(model), WEIGHTS_DIR / model):
        if (folder / "model.json").is_file():
            try:
                name = json.loads((folder / "model.json").read_text())["architecture"]["name"]
            except (OSError, ValueError, KeyError, TypeError):
                return "pgan3d"  # pgan3d's loader reports the broken card in one sentence
            return ARCHITECTURE_FAMILY.get(name, "pgan3d")
    from ..registry import default_registry

    registry = default_registry(entry_points=False)
    if model in registry.ids():
        return ARCHITECTURE_FAMILY.get(registry.get(model).card.architecture.get("name", ""), "pgan3d")
    return "pgan3d"


def family_module(family: str) -> ModuleType:
    return importlib.import_module(FAMILY_MODULES[family])
