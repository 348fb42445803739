"""The report's figures as PNG bytes (matplotlib, no display needed)."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402

from MedSynthLib.conventions import BRATS_LABEL_COLOURS, BRATS_LABELS  # noqa: E402

__all__ = ["mosaic_png", "histograms_png", "tumour_volumes_png", "HIST_BINS"]

HIST_BINS = np.linspace(-1.0, 1.0, 65)
_COLOURS = {"synthetic": "tab:orange", "real": "tab:blue"}


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _slice_index(seg: np.ndarray | None, depth: int) -> int:
    if seg is not None and seg.any():
        return int(np.argwhere(seg > 0)[:, 2].mean())
    return depth // 2


def mosaic_png(samples: dict[str, list[tuple[np.ndarray, np.ndarray | None]]], channels: tuple[str, ...]) -> bytes:
    """Axial slices (through the tumour where there is one) of a few cases of each set, side by side, labels outlined."""
    rows = max(len(cases) for cases in samples.values())
    cols = len(channels) * len(samples)
    figure, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.6 * rows), squeeze=False)
    label_map = ListedColormap([BRATS_LABEL_COLOURS[code] for code in BRATS_LABELS])
    for s, (name, cases) in enumerate(samples.items()):
        for r in range(rows):
            for c, channel in enumerate(channels):
                ax = axes[r][s * len(channels) + c]
                ax.axis("off")
                if r >= len(cases):
                    continue
                images, seg = cases[r]
                z = _slice_index(seg, images.shape[3])
                ax.imshow(images[c][:, :, z].T, cmap="gray", origin="lower", vmin=-1, vmax=1)
                if seg is not None:
                    cut = seg[:, :, z].T
                    codes = np.ma.masked_equal((np.searchsorted(list(BRATS_LABELS), cut) + 1) * (cut > 0), 0)
                    ax.imshow(codes, cmap=label_map, origin="lower", alpha=0.4, vmin=1, vmax=len(BRATS_LABELS), interpolation="nearest")
                if r == 0:
                    ax.set_title(f"{name}\n{channel}", fontsize=8)
    return _png(figure)


def histograms_png(histograms: dict[str, np.ndarray], channels: tuple[str, ...]) -> bytes:
    """Per-channel intensity density inside the head ([-1, 1] scale), synthetic against real."""
    figure, axes = plt.subplots(1, len(channels), figsize=(3 * len(channels), 2.4), squeeze=False)
    centres = (HIST_BINS[:-1] + HIST_BINS[1:]) / 2
    for c, channel in enumerate(channels):
        ax = axes[0][c]
        for name, counts in histograms.items():
            density = counts[c] / max(counts[c].sum(), 1) / (HIST_BINS[1] - HIST_BINS[0])
            ax.plot(centres, density, label=name, color=_COLOURS.get(name))
        ax.set_title(channel, fontsize=9)
        ax.set_xlabel("intensity (per-case scale)", fontsize=7)
        ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    return _png(figure)


def tumour_volumes_png(volumes: dict[str, list[dict[str, float]]], unit: str = "mL") -> bytes:
    """Tumour volume (mL; or area, mm², of 2D slices) per label and in all, one box per set."""
    labels = [*BRATS_LABELS.values(), "whole"]
    figure, axes = plt.subplots(1, len(labels), figsize=(2.4 * len(labels), 2.6), squeeze=False)
    for i, label in enumerate(labels):
        ax = axes[0][i]
        data = [[v[label] for v in cases] for cases in volumes.values()]
        ax.boxplot(data, tick_labels=list(volumes), showmeans=True)
        ax.set_title(f"{label} ({unit})", fontsize=9)
        ax.tick_params(labelsize=7)
    return _png(figure)
