"""Train on synthetic, test on real (TSTR): is the synthetic set as useful for segmentation as the real one?

The protocol, repeated for several seeds (each its own split and its own initialisation):
- the real set is split into held-out test cases and two disjoint training sets A and B of equal size, whole
  subjects on each side when the cases are slices of fewer subjects (``split``);
- the same segmenter recipe trains on A (``real``), on B (``control``: an independent real set of the same
  size), on as many synthetic cases (``synthetic``), and on A plus those (``real_plus_synthetic``);
- every model is tested on the same held-out real cases: Dice per label (NCR, ED, ET) and per BraTS region
  (WT, TC, ET), mean over cases and seeds, with two-level bootstrap 95 % intervals (``confidence``).
``dice_ratio`` = synthetic / real mean label Dice. The control ratio B/A is what data from the very same
distribution scores: its interval must contain 1.0, and a synthetic ratio is read against it.

The same protocol runs on 2D slices (the 2D study's: train on synthetic slices, test on held-out real slices),
with the 2D networks; a "case" is then a slice. The dimensionality follows the arrays.

Deterministic: the splits come from seeded permutations (the synthetic cases from the same permutation of the
synthetic set), and every condition of a seed starts from the same weights and draws the same patches. So a
set evaluated against itself trains the same model as the real set, and its ratio is exactly 1.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from MedSynthLib.conventions import BRATS_LABELS

from ..errors import MedSynthError
from .confidence import RESAMPLES, bootstrap_means, interval
from .dice import LABEL_KEYS, dice_per_case, dice_per_label
from .segmenters import RECIPE_VERSION, SegmenterSettings, network_description, predict_classes, train_segmenter
from .split import split_by_subject

__all__ = ["TstrSettings", "run_tstr", "run_tstr_sets", "dice_per_label", "resize_case"]

_CODES = (0, *BRATS_LABELS)  # network class index -> BraTS code
_LUT = np.zeros(max(_CODES) + 1, dtype=np.int64)
_LUT[list(_CODES)] = np.arange(len(_CODES))
_KEYS = (*LABEL_KEYS, "mean")  # "mean": mean of the three labels, the headline's meaning since the first release
_SHARED = ("real", "control")
_PER_SET = ("synthetic", "real_plus_synthetic")


@dataclass
class TstrSettings:
    steps: int = 1000
    batch_size: int = 4
    learning_rate: float = 1e-2
    patch: int = 32
    segmenter: str = "unet"
    seeds: int = 3
    test_fraction: float = 0.25
    seed: int = 0
    device: str = "cpu"

    def segmenter_settings(self) -> SegmenterSettings:
        return SegmenterSettings(self.segmenter, self.steps, self.batch_size, self.patch, self.learning_rate, self.device)

    def validate(self, grid: int | None = None) -> None:
        self.segmenter_settings().validate(grid if grid is not None else self.patch)
        if not 0.0 < self.test_fraction < 1.0:
            raise MedSynthError(f"The TSTR test fraction must be between 0 and 1, not {self.test_fraction}.")
        if self.seeds < 1:
            raise MedSynthError(f"TSTR needs at least 1 seed, not {self.seeds}.")


def resize_case(images: np.ndarray, seg: np.ndarray, grid: int) -> tuple[np.ndarray, np.ndarray]:
    """A case on the TSTR grid (``grid``^3): images trilinear, labels nearest."""
    x = F.interpolate(torch.from_numpy(images[None].astype(np.float32)), size=(grid,) * 3, mode="trilinear", align_corners=False)
    y = F.interpolate(torch.from_numpy(seg[None, None].astype(np.float32)), size=(grid,) * 3, mode="nearest")
    return x[0].numpy(), y[0, 0].numpy().astype(np.uint8)


def _scores(model: torch.nn.Module, images: np.ndarray, labels: np.ndarray, patch: int) -> np.ndarray:
    """(cases, K) Dice per held-out case in ``_KEYS`` order."""
    predicted = np.array(_CODES, dtype=np.uint8)[predict_classes(model, images, patch)]
    rows = []
    for p, t in zip(predicted, labels, strict=True):
        d = dice_per_case(p, t)
        d["mean"] = float(np.mean([d[name] for name in BRATS_LABELS.values()]))
        rows.append([d[k] for k in _KEYS])
    return np.asarray(rows)


def _summary(samples: dict[str, np.ndarray], values: dict[str, np.ndarray]) -> dict:
    out: dict = {}
    for name, v in values.items():
        means = v.mean(axis=(0, 1))
        out[f"dice_{name}"] = {k: round(float(m), 4) for k, m in zip(_KEYS, means, strict=True)}
        out.setdefault("dice_ci", {})[name] = {k: interval(samples[name][:, i]) for i, k in enumerate(_KEYS)}
    mean = _KEYS.index("mean")

    def ratio(top: str) -> tuple[float | None, list[float] | None]:
        real = values["real"][..., mean].mean()
        value = float(values[top][..., mean].mean() / real) if real > 0 else None
        with np.errstate(divide="ignore", invalid="ignore"):
            boot = samples[top][:, mean] / samples["real"][:, mean]
        return (round(value, 4) if value is not None else None), interval(boot)

    out["dice_ratio"], out["dice_ratio_ci"] = ratio("synthetic")
    out["control_ratio"], out["control_ratio_ci"] = ratio("control")
    if "real_plus_synthetic" in values:
        out["real_plus_synthetic_ratio"], out["real_plus_synthetic_ratio_ci"] = ratio("real_plus_synthetic")
    return out


def _cache_path(cache: Path | None, settings: TstrSettings, seed: int, train: tuple[np.ndarray, ...], test: tuple[np.ndarray, ...]) -> Path | None:
    """Where one training's scores are kept: a digest of everything that decides them (recipe, seed, data)."""
    if cache is None:
        return None
    digest = hashlib.sha256(json.dumps({**asdict(settings), "seeds": None, "device": None, "seed": None, "training_seed": int(seed), "keys": list(_KEYS), "recipe": RECIPE_VERSION}, sort_keys=True).encode())
    for array in (*train, *test):
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return Path(cache) / f"{digest.hexdigest()[:32]}.json"


def run_tstr_sets(
    real: tuple[np.ndarray, np.ndarray],
    synthetic: dict[str, tuple[np.ndarray, np.ndarray]],
    settings: TstrSettings,
    progress: Callable[[int, int], None] | None = None,
    cache: Path | None = None,
    real_plus_synthetic: Collection[str] | None = None,
    subjects: Sequence[str] | None = None,
) -> dict[str, dict]:
    """TSTR of several synthetic sets against one real set, sharing the real and control models of each seed.

    ``real`` and each synthetic set: (images (N, C, g, g, g) float32, labels (N, g, g, g) BraTS codes), or 2D slices
    (N, C, g, g) and (N, g, g).
    ``cache``: a folder keeping each training's held-out scores under a key of its recipe, seed, training data and
    test data, so a later run with one more generator trains only that generator's models (the benchmark's
    ``--work``). ``real_plus_synthetic``: the sets whose real + synthetic model is trained (None: all).
    ``subjects``: each real case's subject (slices of one subject never fall on two sides of the split; None: each
    case its own, see ``split``).
    Returns set name -> the metrics of ``run_tstr``.
    """
    grid = int(real[0].shape[-1])
    settings.validate(grid)
    seeds = [settings.seed + k for k in range(settings.seeds)]
    splits, n_train, counts = split_by_subject(subjects, len(real[0]), min(len(s[0]) for s in synthetic.values()), settings.test_fraction, seeds)
    segmenter = settings.segmenter_settings()
    plus = set(synthetic) if real_plus_synthetic is None else set(real_plus_synthetic) & set(synthetic)
    total = settings.seeds * (len(_SHARED) + len(synthetic) + len(plus)) * settings.steps
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress:
            progress(done[0], total)

    per_seed: dict[str, list[np.ndarray]] = {}
    for seed, split in zip(seeds, splits, strict=True):
        a, b, test = split.a, split.b, split.test
        runs: dict[str, tuple[np.ndarray, np.ndarray]] = {"real": (real[0][a], real[1][a]), "control": (real[0][b], real[1][b])}
        for name, (x, y) in synthetic.items():
            s = np.random.default_rng(seed).permutation(len(x))[:n_train]
            runs[f"{name}/synthetic"] = (x[s], y[s])
            if name in plus:
                runs[f"{name}/real_plus_synthetic"] = (np.concatenate([real[0][a], x[s]]), np.concatenate([real[1][a], y[s]]))
        for key, (x, y) in runs.items():
            stored = _cache_path(cache, settings, seed, (x, y), (real[0][test], real[1][test]))
            if stored is not None and stored.is_file():
                scores = np.asarray(json.loads(stored.read_text()))
                for _ in range(settings.steps):
                    tick()
            else:
                model = train_segmenter(x, _LUT[y], segmenter, seed, len(_CODES), tick)
                scores = _scores(model, real[0][test], real[1][test], settings.patch)
                if stored is not None:
                    stored.parent.mkdir(parents=True, exist_ok=True)
                    tmp = stored.with_suffix(".tmp")
                    tmp.write_text(json.dumps(scores.tolist()))
                    tmp.replace(stored)
            per_seed.setdefault(key, []).append(scores)
    subject_of = np.unique(np.asarray(list(subjects)), return_inverse=True)[1] if subjects is not None else np.arange(len(real[0]))
    test_subjects = np.stack([subject_of[split.test] for split in splits])
    protocol = {
        "n_train": int(n_train),
        "n_test": min(len(split.test) for split in splits),
        "split": "by subject" if counts["subjects"] < len(real[0]) else "by case",
        **counts,
        "seeds": seeds,
        "steps": settings.steps,
        "batch_size": settings.batch_size,
        "learning_rate": settings.learning_rate,
        "patch": settings.patch,
        "seed": settings.seed,
        "grid": grid,
        "segmenter": settings.segmenter,
        "network": network_description(segmenter, real[1].ndim - 1),
        "dice": "mean over held-out real cases and seeds; a label or region absent from prediction and truth counts as 1; "
        "mean = mean of the NCR, ED and ET labels",
        "confidence": f"95 % percentile interval of a two-level bootstrap ({RESAMPLES} resamples: seeds, then held-out "
        + ("subjects, each with all its cases)" if counts["subjects"] < len(real[0]) else "cases)"),
    }
    results = {}
    for name in synthetic:
        values = {c: np.stack(per_seed[c]) for c in _SHARED} | {c: np.stack(per_seed[f"{name}/{c}"]) for c in _PER_SET if f"{name}/{c}" in per_seed}
        samples = bootstrap_means(values, subjects=test_subjects)
        result = _summary(samples, values)
        mean = _KEYS.index("mean")
        result["tstr"] = protocol | {"per_seed_mean_dice": {c: [round(float(v), 4) for v in values[c][..., mean].mean(1)] for c in values}}
        results[name] = result
    return results


def run_tstr(
    real: tuple[np.ndarray, np.ndarray],
    synthetic: tuple[np.ndarray, np.ndarray],
    settings: TstrSettings,
    progress: Callable[[int, int], None] | None = None,
    subjects: Sequence[str] | None = None,
) -> dict:
    """TSTR of one synthetic set: ``dice_real``, ``dice_synthetic``, ``dice_control``, ``dice_real_plus_synthetic``,
    ``dice_ci``, ``dice_ratio`` (+ ``_ci``), ``control_ratio`` (+ ``_ci``), ``real_plus_synthetic_ratio`` (+ ``_ci``), ``tstr``."""
    return run_tstr_sets(real, {"synthetic": synthetic}, settings, progress, subjects=subjects)["synthetic"]
