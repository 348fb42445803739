"""Train on synthetic, test on real (TSTR): is the synthetic set as useful for segmentation as the real one?

The published protocol: the same small segmentation network is trained with the same number of steps, the
same seed and the same number of cases once on synthetic cases and once on real cases, and both are tested
on held-out real cases; the Dice ratio synthetic/real says how much of the real data's value the synthetic
data carries (published synthetic BraTS sets reach 0.8-0.9). A third model trains on real plus synthetic.

Everything is deterministic: the real cases are split by a seeded permutation, the synthetic training cases
are the first of the same seeded permutation of the synthetic set, and every model starts from the same
weights and sees batches in the same order. So two identical sets give identical models, and a Dice ratio
of exactly 1.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from monai.losses import DiceCELoss
from monai.networks.nets import UNet

from MedSynthLib.conventions import BRATS_LABELS

from ..errors import MedSynthError

__all__ = ["TstrSettings", "run_tstr", "dice_per_label"]

_CODES = (0, *BRATS_LABELS)  # network class index -> BraTS code


@dataclass
class TstrSettings:
    steps: int = 200
    batch_size: int = 2
    learning_rate: float = 3e-3
    test_fraction: float = 0.25
    seed: int = 0

    def validate(self) -> None:
        if self.steps < 1 or self.batch_size < 1:
            raise MedSynthError(f"TSTR needs at least 1 step and a batch of 1, not {self.steps} and {self.batch_size}.")
        if not 0.0 < self.test_fraction < 1.0:
            raise MedSynthError(f"The TSTR test fraction must be between 0 and 1, not {self.test_fraction}.")


def _network(channels: int) -> UNet:
    return UNet(spatial_dims=3, in_channels=channels, out_channels=len(_CODES), channels=(8, 16, 32), strides=(2, 2), num_res_units=1)


def _classes(seg: np.ndarray) -> np.ndarray:
    out = np.zeros(seg.shape, dtype=np.int64)
    for index, code in enumerate(_CODES):
        out[seg == code] = index
    return out


def _train(images: np.ndarray, labels: np.ndarray, settings: TstrSettings, tick: Callable[[], None]) -> UNet:
    torch.manual_seed(settings.seed)
    model = _network(images.shape[1])
    optimiser = torch.optim.Adam(model.parameters(), lr=settings.learning_rate)
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    x_all = torch.from_numpy(images)
    y_all = torch.from_numpy(_classes(labels))[:, None]
    order = torch.Generator().manual_seed(settings.seed)
    model.train()
    for _ in range(settings.steps):
        index = torch.randint(len(images), (settings.batch_size,), generator=order)
        optimiser.zero_grad()
        loss = loss_fn(model(x_all[index]), y_all[index])
        loss.backward()
        optimiser.step()
        tick()
    return model.eval()


def dice_per_label(prediction: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Dice of each BraTS label for one case; a label absent from both counts as 1 (the BraTS convention)."""
    scores = {}
    for code, name in BRATS_LABELS.items():
        p, t = prediction == code, truth == code
        total = int(p.sum() + t.sum())
        scores[name] = 1.0 if total == 0 else 2.0 * float((p & t).sum()) / total
    return scores


def _test(model: UNet, images: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    with torch.no_grad():
        classes = model(torch.from_numpy(images)).argmax(1).numpy()
    lut = np.array(_CODES, dtype=np.uint8)
    per_case = [dice_per_label(lut[c], t) for c, t in zip(classes, labels, strict=True)]
    result = {name: float(np.mean([d[name] for d in per_case])) for name in BRATS_LABELS.values()}
    result["mean"] = float(np.mean(list(result.values())))
    return result


def resize_case(images: np.ndarray, seg: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """A case on the TSTR grid (``grid``^3): images trilinear, labels nearest."""
    x = F.interpolate(torch.from_numpy(images[None].astype(np.float32)), size=(grid,) * 3, mode="trilinear", align_corners=False)
    y = F.interpolate(torch.from_numpy(seg[None, None].astype(np.float32)), size=(grid,) * 3, mode="nearest")
    return x[0].numpy(), y[0, 0].numpy().astype(np.uint8)


def run_tstr(
    real: tuple[np.ndarray, np.ndarray],
    synthetic: tuple[np.ndarray, np.ndarray],
    settings: TstrSettings,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """``real``/``synthetic``: (images (N, C, g, g, g) float32, labels (N, g, g, g) BraTS codes), cases in a fixed order."""
    settings.validate()
    n_real, n_syn = len(real[0]), len(synthetic[0])
    if n_real < 2:
        raise MedSynthError("TSTR needs at least 2 real cases: some to train on and some held out to test on.")
    n_test = min(n_real - 1, max(1, int(round(settings.test_fraction * n_real))))
    n_train = min(n_real - n_test, n_syn)
    real_order = np.random.default_rng(settings.seed).permutation(n_real)
    syn_order = np.random.default_rng(settings.seed).permutation(n_syn)
    real_train, test = real_order[:n_train], real_order[n_real - n_test :]
    syn_train = syn_order[:n_train]
    total = 3 * settings.steps
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress:
            progress(done[0], total)

    test_set = (real[0][test], real[1][test])
    runs = {
        "synthetic": (synthetic[0][syn_train], synthetic[1][syn_train]),
        "real": (real[0][real_train], real[1][real_train]),
        "real_plus_synthetic": (
            np.concatenate([real[0][real_train], synthetic[0][syn_train]]),
            np.concatenate([real[1][real_train], synthetic[1][syn_train]]),
        ),
    }
    dice = {name: _test(_train(x, y, settings, tick), *test_set) for name, (x, y) in runs.items()}
    ratio = dice["synthetic"]["mean"] / dice["real"]["mean"] if dice["real"]["mean"] > 0 else None
    return {
        "dice_synthetic": dice["synthetic"],
        "dice_real": dice["real"],
        "dice_real_plus_synthetic": dice["real_plus_synthetic"],
        "dice_ratio": ratio,
        "tstr": {
            "n_train": int(n_train),
            "n_test": int(n_test),
            "steps": settings.steps,
            "batch_size": settings.batch_size,
            "learning_rate": settings.learning_rate,
            "seed": settings.seed,
            "grid": int(real[0].shape[-1]),
            "network": "MONAI UNet, channels (8, 16, 32), strides (2, 2), 1 residual unit; DiceCE loss; Adam",
            "dice": "mean over held-out real cases; a label absent from prediction and truth counts as 1",
        },
    }
