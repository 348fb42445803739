"""Projection of a real slice into W: the w whose image is closest to it (Karras et al. 2020, section 5, without
LPIPS, which would need downloaded weights: pixel error at full and half resolution instead).

``generate --like CASE`` uses it for variations of a slice: each case's w is the projection plus its seed's
offset from ``w_avg``, scaled by ``--truncation``. The slice is a case folder (``<case>_t1.nii.gz``...) with the
model's channels: either one slice on the model's grid, read on the card's intensity scale (a generated case,
or one the user cut out), or a volume, which goes through the training preprocessing and gives its axial slice
with the most head and tumour (as training chose slices).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from MedSynthLib.conventions import LABEL_CHANNEL

from ...data.layouts import Case, find_case_files
from ...data.preprocess import PreprocessSpec, preprocess_case
from ...data.validate import validate_case
from ...errors import MedSynthError
from ...modelfile import ModelCard
from ..slices2d.slices import best_slices
from .labels import encode
from .network import Generator, StyleGANConfig

__all__ = ["project", "read_target", "DEFAULT_STEPS"]

DEFAULT_STEPS = 200
LR = 0.1


def read_target(folder: Path, card: ModelCard) -> torch.Tensor:
    """The case in ``folder`` as a (1, C, R, R) network tensor for the model of ``card``, or one sentence why not."""
    channels = tuple(card.channels)
    case_id, files, _ = find_case_files(Path(folder))
    arrays, affine = validate_case(Case(case_id, files), channels)
    images = list(card.architecture["image_channels"])
    res = int(card.shape[0])
    shape = next(iter(arrays.values())).shape
    if len(shape) == 3 and shape[2] == 1:
        if tuple(shape[:2]) != (res, res):
            raise MedSynthError(f"The slice in {folder} is {shape[0]}x{shape[1]}; model '{card.id}' makes {res}x{res} slices.")
        scales = card.preprocessing.get("normalisation", {}).get("channels", {})
        planes = [
            (arrays[c][..., 0].astype(np.float32) - scales[c]["low"]) / (scales[c]["high"] - scales[c]["low"]) * 2 - 1 for c in images
        ]
        labels = arrays[LABEL_CHANNEL][..., 0] if LABEL_CHANNEL in arrays else None
    else:
        spacing = float(card.spacing[0])
        out, _ = preprocess_case(arrays, affine, PreprocessSpec(shape=(res,) * 3, spacing=(spacing,) * 3))
        volume = np.stack([out[c] for c in images])
        chosen = int(best_slices(volume, out.get(LABEL_CHANNEL), 1)[0])
        planes = list(volume[..., chosen])
        labels = out[LABEL_CHANNEL][..., chosen] if LABEL_CHANNEL in out else None
    target = torch.from_numpy(np.stack(planes).astype(np.float32))[None]
    if labels is not None:
        target = torch.cat([target, encode(torch.from_numpy(labels.astype(np.int64))[None], StyleGANConfig.from_dict(card.architecture).label_encoding)], dim=1)
    return target


def _distance(image: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean squared error at full and half resolution (the half keeps the coarse layout in view)."""
    return F.mse_loss(image, target) + F.mse_loss(F.avg_pool2d(image, 2), F.avg_pool2d(target, 2))


def project(generator: Generator, target: torch.Tensor, steps: int = DEFAULT_STEPS) -> tuple[torch.Tensor, list[float]]:
    """The w (1, w_dim) whose image (fixed noise) best matches ``target``, from ``w_avg`` by Adam with a cosine
    learning-rate ramp-down; plus the distance before each step and after the last."""
    if steps < 1:
        raise MedSynthError(f"Projection needs at least one step, not {steps}.")
    generator.requires_grad_(False)
    target = target.to(generator.const.device)
    w = generator.mapping.w_avg.detach().clone()[None].requires_grad_(True)
    optimiser = torch.optim.Adam([w], lr=LR, betas=(0.9, 0.999))
    num_ws = generator.config.num_ws
    distances: list[float] = []
    with torch.enable_grad():  # also when called under no_grad, as generation is
        for i in range(steps):
            for group in optimiser.param_groups:
                group["lr"] = LR * 0.5 * (1 + math.cos(math.pi * i / steps))
            distance = _distance(generator.synthesis(w[:, None].repeat(1, num_ws, 1), noise_mode="const"), target)
            distances.append(distance.item())
            optimiser.zero_grad(set_to_none=True)
            distance.backward()
            optimiser.step()
    with torch.no_grad():
        distances.append(float(_distance(generator.synthesis(w[:, None].repeat(1, num_ws, 1), noise_mode="const"), target)))
    return w.detach(), distances
