"""What a fine-tune starts from: the pgan3d architecture (from scratch) or a trained pgan3d model folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from MedSynthLib.conventions import LABEL_CHANNEL

from ...data.preprocess import NEW_MODEL_FOV_MM
from ...errors import MedSynthError
from ...modelfile import ModelCard, load_model_folder, read_card
from ...weights import model_folder
from .network import PGANConfig

__all__ = ["BaseModel", "resolve_base", "folder_of", "load_matching"]

SCRATCH_IDS = ("pgan3d",)


@dataclass
class BaseModel:
    """Architecture, grid and (optionally) weights to start from."""

    config: PGANConfig
    spacing: float
    start_stage: int = 0
    generator: dict[str, torch.Tensor] = field(default_factory=dict)
    discriminator: dict[str, torch.Tensor] = field(default_factory=dict)
    card: ModelCard | None = None
    origin: str = "pgan3d (random initialisation)"


def folder_of(model: str) -> Path | None:
    """The model folder behind a folder path or a shipped pgan3d id; None for an unknown name."""
    folder = model_folder(model)
    if folder is None:
        return None
    if read_card(folder).architecture.get("name") != "pgan3d":
        raise MedSynthError(f"Model '{model}' is not a pgan3d model; fine-tune pgan3d, pgan3d-phantom or a pgan3d model folder.")
    return folder


def resolve_base(
    model: str,
    channels: tuple[str, ...],
    resolution: int | None,
    spacing: float | None,
    width: int | None,
) -> BaseModel:
    """The starting point for ``--model``: a model id or folder; new stages grow past a base's resolution."""
    images = [c for c in channels if c != LABEL_CHANNEL]
    labels = LABEL_CHANNEL in channels
    if model in SCRATCH_IDS:
        res = resolution or 64
        w = width or 128
        config = PGANConfig(resolution=res, image_channels=images, labels=labels, base_width=w, max_width=w, min_width=min(16, w))
        return BaseModel(config=config, spacing=spacing or NEW_MODEL_FOV_MM / res)
    folder = folder_of(model)
    if folder is None:
        raise MedSynthError(f"Unknown base model '{model}'; use pgan3d (a new model), pgan3d-phantom or a pgan3d model folder.")
    card, tensors = load_model_folder(folder)
    if card.architecture.get("name") != "pgan3d":
        raise MedSynthError(f"The model folder {folder} is a '{card.architecture.get('name')}' model, not pgan3d.")
    old = PGANConfig.from_dict(card.architecture)
    res = resolution or old.resolution
    if res < old.resolution:
        raise MedSynthError(f"The base model {model} is {old.resolution}^3; fine-tune it at {old.resolution} or more, not {res}.")
    if width is not None and width != old.base_width:
        raise MedSynthError(f"The base model {model} has width {old.base_width}; leave out the width when continuing from it.")
    data = {**old.to_dict(), "resolution": res, "image_channels": images, "labels": labels}
    config = PGANConfig.from_dict(data)
    return BaseModel(
        config=config,
        spacing=spacing or float(card.spacing[0]) * old.resolution / res,
        start_stage=old.stages - 1,
        generator={k[10:]: v for k, v in tensors.items() if k.startswith("generator.")},
        discriminator={k[14:]: v for k, v in tensors.items() if k.startswith("discriminator.")},
        card=card,
        origin=f"{card.id} ({folder})",
    )


def load_matching(module: torch.nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Load every tensor whose name and shape fit; returns the names left at their initial values."""
    own = module.state_dict()
    fitting = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    module.load_state_dict(fitting, strict=False)
    return sorted(set(own) - set(fitting))
