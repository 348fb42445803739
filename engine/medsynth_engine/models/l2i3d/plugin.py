"""The l2i3d model plugin: draw a label map, render it, sample the per-voxel Gaussian with the case's seed.

The anatomy of case ``seed`` is the phantom subject ``subject_seed(seed)``: a different subject from the
phantom's own case ``seed``, so a synthetic set made with the same seeds as a phantom set (the validity
benchmark's reference) shares no anatomy with it. ``--mask`` replaces the tumour of a healthy subject by the
drawn one (inside the brain). A model trained with a style model (``style.*`` tensors, models/l2i3d/style.py)
multiplies each case's own tissue contrast and smooth gain in and scales its noise, drawn from the case's seed;
older model folders render without.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from MedSynthLib.conventions import LABEL_CHANNEL

from ...contract import ModelPlugin, SynthCase
from ...data.preprocess import PreprocessSpec, grid_affine
from ...errors import MedSynthError
from ...modelfile import load_model_folder
from .labels import BACKGROUND, N_CLASSES, TUMOUR_CLASS, one_hot, sample_label_map, tumour_codes
from .network import L2IConfig, build_renderer, noise_scales, split_output
from .style import STYLE_PREFIX, apply_style, sample_style

__all__ = ["L2I3DModel", "render_classes", "predict", "sample", "subject_seed", "NET_PREFIX"]

NET_PREFIX = "renderer."


def subject_seed(seed: int) -> int:
    """The phantom subject whose anatomy case ``seed`` takes (a fixed bijection away from the phantom's own seeds)."""
    return int((int(seed) * 0x9E3779B1 + 0x12D4C7) % (2**31 - 1))


def render_classes(net: torch.nn.Module, classes: np.ndarray, seed: int, temperature: float | list[float], device: torch.device) -> np.ndarray:
    """Images (C, X, Y, Z) in [-1, 1] for a class map: mean + temperature x sigma x seeded noise; background outside the brain.

    ``temperature``: one scale, or one per sequence.
    """
    mean, sigma = predict(net, classes, device)
    return sample(mean, sigma, classes, seed, temperature)


def predict(net: torch.nn.Module, classes: np.ndarray, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """The renderer's per-voxel mean and standard deviation (C, X, Y, Z) for a class map."""
    x = torch.from_numpy(one_hot(classes))[None].to(device)
    with torch.inference_mode():
        mean, log_sigma = split_output(net.eval()(x).float())
    return mean[0].cpu().numpy(), log_sigma.exp()[0].cpu().numpy()


def sample(mean: np.ndarray, sigma: np.ndarray, classes: np.ndarray, seed: int, temperature: float | list[float]) -> np.ndarray:
    """mean + temperature x sigma x seeded standard normal noise, clipped to [-1, 1]; background outside the brain."""
    noise = torch.randn(tuple(mean.shape), generator=torch.Generator().manual_seed(int(seed))).numpy()
    scale = np.asarray(temperature, dtype=np.float32).reshape(-1, 1, 1, 1)
    images = np.clip(mean + scale * sigma * noise, -1.0, 1.0).astype(np.float32)
    images[:, classes == 0] = BACKGROUND
    return images


class L2I3DModel(ModelPlugin):
    """A trained l2i3d model folder."""

    supports_mask = True

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.card, tensors = load_model_folder(self.folder)
        self.config = L2IConfig.from_dict(self.card.architecture)
        self.net = build_renderer(self.config).eval().requires_grad_(False)
        try:
            self.net.load_state_dict({k[len(NET_PREFIX) :]: v.float() for k, v in tensors.items() if k.startswith(NET_PREFIX)})
        except RuntimeError:
            raise MedSynthError(f"The weights in {folder} do not fit the l2i3d architecture its card describes.") from None
        spec = self.card.preprocessing
        self.spec = PreprocessSpec(shape=tuple(self.card.shape), spacing=tuple(self.card.spacing))  # type: ignore[arg-type]
        for key in ("low_percentile", "high_percentile", "foreground_fraction"):
            if key in spec:
                setattr(self.spec, key, float(spec[key]))
        self.temperature = noise_scales(self.config)
        self.style = {k: v for k, v in tensors.items() if k.startswith(STYLE_PREFIX)} or None
        self.weights_origin = str(self.card.weights.get("source", ""))

    def to_physical(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """[-1, 1] images -> int16 on the training data's median scale (the card's normalisation)."""
        scales = self.card.preprocessing.get("normalisation", {}).get("channels", {})
        out = {}
        for i, channel in enumerate(self.config.channels):
            low, high = (float(scales.get(channel, {}).get(k, d)) for k, d in (("low", 0.0), ("high", 1000.0)))
            value = (images[i] + 1.0) / 2.0 * (high - low) + low
            out[channel] = np.clip(np.rint(value), -32768, 32767).astype(np.int16)
        return out

    def label_map(self, seed: int, *, tumour: bool, mask: Path | None) -> np.ndarray:
        shape, spacing = tuple(self.card.shape), tuple(self.card.spacing)
        classes = sample_label_map(subject_seed(seed), shape, spacing, self.spec, tumour=tumour and mask is None)  # type: ignore[arg-type]
        if mask is not None:
            from ...masks import load_mask

            codes = load_mask(Path(mask), (shape, grid_affine(shape, spacing)))
            brain = classes > 0
            inside = float(brain[codes > 0].mean())
            if inside < 0.5:
                raise MedSynthError(f"The mask {mask} lies mostly outside the generated brain ({1 - inside:.0%} of its voxels); draw it inside the brain.")
            for code, k in TUMOUR_CLASS.items():
                classes[(codes == code) & brain] = k
        return classes

    def generate(
        self,
        *,
        seed: int,
        channels: tuple[str, ...],
        shape: tuple[int, int, int],
        spacing: tuple[float, float, float],
        tumour: bool,
        device: Any,
        mask: Path | None = None,
    ) -> SynthCase:
        device = torch.device(device or "cpu")
        self.net.to(device)
        classes = self.label_map(seed, tumour=tumour, mask=mask)
        if classes.max() >= N_CLASSES:
            raise MedSynthError("The label map has a class the renderer does not know.")
        mean, sigma = predict(self.net, classes, device)
        if self.style is None:
            images = sample(mean, sigma, classes, seed, self.temperature)
        else:
            drawn = sample_style(self.style, seed, len(self.config.channels), classes)
            temperature = np.broadcast_to(np.asarray(self.temperature, dtype=np.float32), (len(self.config.channels),)) * drawn.noise
            images = apply_style(sample(mean, sigma, classes, seed, list(temperature)), drawn, classes)
        arrays: dict[str, np.ndarray] = self.to_physical(images)
        arrays[LABEL_CHANNEL] = tumour_codes(classes)
        params = {"model": self.id, "subject_seed": subject_seed(seed), "noise_seed": int(seed), "temperature": self.temperature, "style": self.style is not None,
                  "mask": mask is not None}
        return SynthCase(arrays={c: arrays[c] for c in channels}, affine=grid_affine(tuple(self.card.shape), tuple(self.card.spacing)), params=params)
