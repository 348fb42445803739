"""``wobble``: the smallest complete MedSynth model family, the worked example of README's "Writing a model plugin".

Its models fill a T1 volume with one level (plus a seed-dependent wobble); training learns that level from the
training cases' brain voxels. It declares everything the plugin contract asks for, in one package, and
touches no MedSynth file: an entry point in its own distribution's metadata registers it::

    [medsynth.models]
    wobble = wobble_family:FAMILY
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from medsynth_engine.contract import Capabilities, ModelFamily, ModelPlugin, SynthCase, TrainerSpec, option
from medsynth_engine.data.layouts import find_cases
from medsynth_engine.modelfile import ModelCard, load_model_folder, save_model_folder
from medsynth_engine.nifti_io import read_nifti
from medsynth_engine.training.losslog import append_loss


@dataclass(frozen=True)
class WobbleOptions:
    """The family's own training option: it becomes ``medsynth finetune --wobble``, a finetune job param and a panel field."""

    wobble: float = option(5.0, "how far the level wobbles from one seed to the next", minimum=0.0, maximum=100.0)


class WobbleModel(ModelPlugin):
    """A wobble model: its card and the level it learned."""

    def __init__(self, card: ModelCard, level: float) -> None:
        self.card, self.level = card, float(level)

    def generate(self, *, seed, channels, shape, spacing, tumour, device) -> SynthCase:
        level = self.level + self.card.architecture["wobble"] * (seed % 3)
        affine = np.diag([*map(float, spacing), 1.0])
        return SynthCase({"t1": np.full(shape, level, dtype=np.int16)}, affine, params={"level": level})


def load(folder: Path) -> WobbleModel:
    """The family's loader: a model folder (card + safetensors) that ``train`` wrote."""
    card, tensors = load_model_folder(Path(folder))
    return WobbleModel(card, float(tensors["level"]))


def built_in() -> WobbleModel:
    """The model the family offers without training."""
    return WobbleModel(_card("wobble-constant", 5.0, "none: a constant"), 100.0)


def _card(model_id: str, wobble: float, data: str) -> ModelCard:
    return ModelCard(id=model_id, kind="procedural", architecture={"name": "wobble", "wobble": wobble}, channels=["t1"],
                     shape=[8, 8, 8], spacing=[4.0, 4.0, 4.0], training_data=data, licence="CC0-1.0")


def train(request, options: WobbleOptions, progress=None, should_stop=None) -> Path:
    """One real training step: the mean T1 level of the training cases' non-zero voxels, saved as a model folder."""
    _, cases = find_cases(Path(request.data), None)
    levels = [float(np.mean(a[a > 0])) for a in (read_nifti(case.files["t1"])[0] for case in cases) if np.any(a > 0)]
    out = Path(request.out)
    out.mkdir(parents=True, exist_ok=True)
    append_loss(out, {"step": 1, "spread": float(np.std(levels))})
    save_model_folder(out, _card(f"wobble-{out.name}", options.wobble, f"{len(levels)} case(s)"), {"level": torch.tensor(np.mean(levels))})
    if progress:
        progress({"step": 1, "total": 1, "stage": "wobble", "losses": {"spread": float(np.std(levels))}})
    return out


FAMILY = ModelFamily(
    name="wobble",
    architecture="wobble",
    kind="procedural",
    summary="a constant T1 level learned from the training cases (the plugin contract's worked example)",
    capabilities=Capabilities(dims=3),
    load="wobble_family:load",
    builtin={"wobble-constant": "wobble_family:built_in"},
    trainer=TrainerSpec(train="wobble_family:train", options=WobbleOptions),
)
