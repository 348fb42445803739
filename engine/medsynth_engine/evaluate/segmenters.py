"""The segmenters TSTR trains: a U-Net (MONAI DynUNet) and a Swin transformer (MONAI SwinUNETR).

Why patches: a 64^3 four-sequence volume through a 3D network costs seconds a step on a shared CPU, so each
model is trained on random ``patch``^3 crops (two in three centred on a tumour voxel, the nnU-Net
foreground oversampling, so small classes are seen) with random left-right flips and, as nnU-Net does, random
per-channel intensity scaling and shifts (a segmenter that keys on one set's exact intensities fails on the
held-out cases whose contrast differs: on the validity benchmark's seed 0 split the augmentation moved held-out
whole-tumour Dice from 0.655 to 0.794, small tumours most), and tested on the whole
volume by Gaussian-weighted sliding windows, averaged with the left-right mirrored prediction (nnU-Net's mirroring).

Inputs are standardised per case and channel inside the head (zero mean, unit variance; 0 outside), as nnU-Net
normalises MRI. The sets arrive scaled from percentiles to [-1, 1], and in T1ce the top percentile lands on the
enhancing tumour, so the brain's level moved with the tumour from case to case: the same held-out tumour scored
whole-tumour Dice 0.38 to 0.49 for every training set. Standardised, the benchmark's real-trained whole-tumour
Dice went from 0.758 / 0.770 to 0.915 / 0.853 on seeds 1 and 2 (recipe 5). Everything is seeded: the same data, seed and settings give
the same model. The same recipe trains on 2D slices (``patch``^2 crops, the networks with spatial_dims=2):
the dimensionality follows the arrays.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from monai.inferers import sliding_window_inference
from monai.losses import DiceLoss
from monai.networks.nets import DynUNet, SwinUNETR

from ..errors import MedSynthError

__all__ = ["FAMILIES", "RECIPE_VERSION", "SegmenterSettings", "regions_of", "classes_of", "standardise_in_head", "train_segmenter", "predict_classes", "network_description"]

#: segmenter family -> one line for reports.
FAMILIES = {
    "unet": "MONAI DynUNet (U-Net), filters 8-16-32-64, instance norm",
    "swinunetr": "MONAI SwinUNETR (Swin transformer encoder, U-Net decoder), feature size 12",
}
_FOREGROUND_SHARE = 2 / 3
#: Intensity augmentation: with probability ``_AUGMENT_SHARE`` a patch's channels are each scaled by a factor in
#: [1 - a, 1 + a] and shifted by [-a, a] (the inputs are normalised per case, so a is relative to the brain's range).
_AUGMENT_AMOUNT, _AUGMENT_SHARE = 0.15, 0.8
#: A voxel belongs to the head when any channel is this far above the background's -1 (the sets' percentile scaling).
_HEAD_ABOVE = 0.01
#: Raised whenever a change to the training code changes what a recipe trains (it keys the benchmark's score cache).
RECIPE_VERSION = 5


@dataclass
class SegmenterSettings:
    """One segmenter's recipe; the same recipe trains every condition of a TSTR run."""

    family: str = "unet"
    steps: int = 300
    batch_size: int = 4
    patch: int = 32
    learning_rate: float = 1e-2
    device: str = "cpu"

    def validate(self, grid: int) -> None:
        if self.family not in FAMILIES:
            raise MedSynthError(f"Unknown segmenter {self.family!r}; choose one of {', '.join(FAMILIES)}.")
        if self.steps < 1 or self.batch_size < 1:
            raise MedSynthError(f"TSTR needs at least 1 step and a batch of 1, not {self.steps} and {self.batch_size}.")
        step, low = (32, 64) if self.family == "swinunetr" else (8, 8)  # SwinUNETR's deepest level needs 2^3 voxels
        if self.patch < low or self.patch % step or self.patch > grid:
            raise MedSynthError(f"The {self.family} patch must be a multiple of {step} between {low} and the grid ({grid}), not {self.patch}.")
        if not 0 < self.learning_rate < 1:
            raise MedSynthError(f"The TSTR learning rate must be between 0 and 1, not {self.learning_rate}.")


def network_description(settings: SegmenterSettings, spatial_dims: int = 3) -> str:
    return (
        f"{FAMILIES[settings.family]}; BraTS regions WT/TC/ET as sigmoid outputs, Dice (over the batch) + BCE loss; Adam lr {settings.learning_rate:g} with cosine decay; {settings.steps} steps of "
        f"{settings.batch_size} random {settings.patch}^{spatial_dims} patches (2/3 centred on tumour, random left-right flip, "
        f"per-channel intensity scale and shift +-{_AUGMENT_AMOUNT:g} on {_AUGMENT_SHARE:.0%} of patches); "
        "inputs standardised per case and channel inside the head; sliding-window inference (Gaussian, overlap 0.25) "
        "averaged with its left-right mirror"
    )


def _network(family: str, channels: int, classes: int, spatial_dims: int) -> torch.nn.Module:
    if family == "swinunetr":
        return SwinUNETR(in_channels=channels, out_channels=classes, feature_size=12, spatial_dims=spatial_dims)
    filters = (8, 16, 32, 64)
    return DynUNet(
        spatial_dims=spatial_dims,
        in_channels=channels,
        out_channels=classes,
        kernel_size=[3] * len(filters),
        strides=[1] + [2] * (len(filters) - 1),
        upsample_kernel_size=[2] * (len(filters) - 1),
        filters=filters,
        norm_name="instance",
    )


def standardise_in_head(images: np.ndarray) -> np.ndarray:
    """(N, C, ...) images scaled to [-1, 1] -> each case's channels at zero mean and unit variance inside its head
    (voxels where any channel is above the background), 0 outside; float32, a new array."""
    out = np.zeros(images.shape, dtype=np.float32)
    for n, case in enumerate(images):
        head = (case > -1 + _HEAD_ABOVE).any(axis=0)
        if head.sum() < 2:
            continue
        for c, channel in enumerate(case):
            values = channel[head].astype(np.float64)
            out[n, c][head] = (values - values.mean()) / (values.std() + 1e-6)
    return out


def _memory_format(ndim: int) -> torch.memory_format:
    """channels-last for 3D batches (about a fifth faster on CPU convolutions); 2D keeps the default."""
    return torch.channels_last_3d if ndim == 5 else torch.contiguous_format


def _crops(labels: np.ndarray, batch: int, patch: int, rng: np.random.Generator) -> list[tuple[int, tuple[int, ...], bool]]:
    """(case, patch start, flip) for one batch: foreground-centred with probability 2/3 where the case has tumour."""
    grid = np.array(labels.shape[1:])
    picks = []
    for _ in range(batch):
        case = int(rng.integers(len(labels)))
        tumour = np.flatnonzero(labels[case])
        if tumour.size and rng.random() < _FOREGROUND_SHARE:
            centre = np.array(np.unravel_index(tumour[rng.integers(tumour.size)], labels.shape[1:]))
            start = np.clip(centre - patch // 2, 0, grid - patch)
        else:
            start = np.array([rng.integers(n - patch + 1) for n in grid])
        picks.append((case, tuple(int(s) for s in start), bool(rng.random() < 0.5)))  # type: ignore[arg-type]
    return picks


def _augment(patch: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(C, p, p[, p]) patch with each channel scaled and shifted at random (on ``_AUGMENT_SHARE`` of the patches)."""
    if rng.random() >= _AUGMENT_SHARE:
        return patch
    shape = (patch.shape[0],) + (1,) * (patch.ndim - 1)
    scale = rng.uniform(1 - _AUGMENT_AMOUNT, 1 + _AUGMENT_AMOUNT, shape).astype(np.float32)
    shift = rng.uniform(-_AUGMENT_AMOUNT, _AUGMENT_AMOUNT, shape).astype(np.float32)
    return patch * scale + shift


def regions_of(classes: torch.Tensor) -> torch.Tensor:
    """(N, g, g, g) or (N, g, g) class indices (0 background, 1 NCR, 2 ED, 3 ET) -> (N, 3, ...) float WT, TC, ET targets."""
    return torch.stack([classes > 0, (classes == 1) | (classes == 3), classes == 3], dim=1).float()


def classes_of(regions: torch.Tensor) -> torch.Tensor:
    """(3, g, g, g) or (3, g, g) boolean WT, TC, ET -> class indices, nested as BraTS defines them (ET in TC in WT)."""
    wt, tc, et = regions[0], regions[1] & regions[0], regions[2] & regions[1] & regions[0]
    out = torch.zeros(wt.shape, dtype=torch.uint8)
    out[wt] = 2
    out[tc] = 1
    out[et] = 3
    return out


def train_segmenter(
    images: np.ndarray, classes: np.ndarray, settings: SegmenterSettings, seed: int, n_classes: int, tick: Callable[[], None]
) -> torch.nn.Module:
    """Train on ``images`` (N, C, g, g, g) float32 and ``classes`` (N, g, g, g) class indices, or their 2D slices
    (N, C, g, g) and (N, g, g); the model in eval mode.

    The network predicts the BraTS regions (whole tumour, tumour core, enhancing tumour) as three sigmoid outputs,
    as the challenge's leading entries train: the whole tumour, the region that matters most, is then one binary
    target of its own instead of the sum of three small classes competing in a softmax. ``n_classes`` must be 4.
    """
    if n_classes != 4:
        raise MedSynthError(f"The TSTR segmenter predicts the BraTS regions of 4 classes, not {n_classes}.")
    torch.manual_seed(seed)
    device = torch.device(settings.device)
    layout = _memory_format(images.ndim)
    images = standardise_in_head(images)
    model = _network(settings.family, images.shape[1], 3, classes.ndim - 1).to(device, memory_format=layout)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=settings.steps)
    dice = DiceLoss(sigmoid=True, batch=True)
    bce = torch.nn.BCEWithLogitsLoss()
    rng = np.random.default_rng(seed)
    augment_rng = np.random.default_rng(seed + 1000)  # its own stream: the patches drawn are those of recipe 3
    p = settings.patch
    model.train()
    for _ in range(settings.steps):
        xs, ys = [], []
        for case, start, flip in _crops(classes, settings.batch_size, p, rng):
            box = tuple(slice(s, s + p) for s in start)
            x = images[(case, slice(None), *box)]
            y = classes[(case, *box)]
            xs.append(_augment(x[:, ::-1] if flip else x, augment_rng))  # axis 0 of the volume or slice is left-right (RAS)
            ys.append(y[::-1] if flip else y)
        x_batch = torch.from_numpy(np.ascontiguousarray(np.stack(xs))).to(device, memory_format=layout)
        y_batch = regions_of(torch.from_numpy(np.ascontiguousarray(np.stack(ys)))).to(device)
        optimiser.zero_grad()
        logits = model(x_batch)
        (dice(logits, y_batch) + bce(logits, y_batch)).backward()
        optimiser.step()
        schedule.step()
        tick()
    return model.eval()


class _Mirrored(torch.nn.Module):
    """The model's logits averaged with those of the left-right mirrored input, mirrored back (axis 2 of (N, C, x, ...))."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.model(x) + self.model(x.flip(2)).flip(2))


def predict_classes(model: torch.nn.Module, images: np.ndarray, patch: int) -> np.ndarray:
    """Class index per voxel (or pixel) for (N, C, g, g, g) images (or (N, C, g, g) slices) scaled to [-1, 1], one
    case at a time, standardised as in training."""
    out = []
    device = next(model.parameters()).device
    mirrored = _Mirrored(model).eval()
    with torch.no_grad():
        for case in standardise_in_head(images):
            logits = sliding_window_inference(
                torch.from_numpy(case[None]).to(device), roi_size=(patch,) * (images.ndim - 2), sw_batch_size=4, predictor=mirrored, overlap=0.25, mode="gaussian"
            )
            out.append(classes_of(torch.sigmoid(logits)[0].cpu() > 0.5).numpy())  # type: ignore[union-attr]
    return np.stack(out)
