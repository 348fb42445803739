"""Learned image features for precision/recall: the encoder of the project's own segmenter (seg-phantom).

Why this encoder: nothing may be downloaded inside a hospital, so there is no Inception or MedicalNet; the
shipped seg-phantom U-Net was trained inside the project to find tumours in t1/t1ce/t2/flair, none of the
generators it judges shares its weights, and its deepest level summarises anatomy and lesion at a 24 mm
scale. A case's feature vector is the mean and the standard deviation of each of the bottleneck's channels.
Input: the case on the fixed evaluation grid (64^3 at 3 mm), each sequence normalised inside the head as
the segmenter was trained; a missing sequence is marked absent, as in training.

The weights are frozen in ``encoder_weights/`` (seg-phantom as shipped from 2026-11-30, SHA-256 pinned below), not
read from the shipped seg-phantom: like FID's one Inception network, the feature extractor must not change when the
segmenter is retrained, or every recorded precision, recall, density and coverage would silently move.

A 2D slice (the 2D families' cases) is encoded as a slab of ``SLAB`` copies of itself, the network's total
stride, so the bottleneck holds one plane of the slice's features: per-slice features from the same encoder,
with no other network to train or download.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import MedSynthError
from ..models.channelnet.inputs import assemble
from ..models.channelnet.model import ChannelModel

__all__ = ["ENCODER_DIR", "ENCODER_ID", "ENCODER_SHA256", "SLAB", "SegEncoder"]

#: Named after the segmenter it froze (evaluation results say "<ENCODER_ID> segmenter bottleneck").
ENCODER_ID = "seg-phantom of 2026-11-30 (frozen)"
ENCODER_DIR = Path(__file__).with_name("encoder_weights")
#: The weights every recorded evaluation used; the card's hash is checked on load, this pins the card.
ENCODER_SHA256 = "8f56e7f1147ec347f0db061c06f7472c321b847777fc18665cd8f5793651fa8a"
#: Copies of a 2D slice stacked into the slab the 3D encoder reads (its three stride-2 levels: 2^3).
SLAB = 8


class SegEncoder:
    """Bottleneck features of the shipped segmenter for (C, X, Y, Z) volumes in [-1, 1]."""

    def __init__(self) -> None:
        model = ChannelModel(ENCODER_DIR, expected="segnet")
        if model.card.weights.get("sha256") != ENCODER_SHA256:
            raise MedSynthError(f"The evaluation encoder in {ENCODER_DIR} is not the frozen one (SHA-256 {ENCODER_SHA256[:12]}...).")
        self.net = model.net
        widest = max(model.config.channels)
        self._captured: list[torch.Tensor] = []
        self._hooks = [
            m.register_forward_hook(self._capture) for m in self.net.modules() if isinstance(m, torch.nn.Conv3d) and m.out_channels == widest
        ]

    def _capture(self, _module: torch.nn.Module, _inputs: tuple, output: torch.Tensor) -> None:
        self._captured.append(output)

    def features(self, images: np.ndarray, channels: tuple[str, ...]) -> np.ndarray:
        """Mean and spread per bottleneck channel of a (C, X, Y, Z) volume or a (C, X, Y) slice; ``channels`` names the rows."""
        if images.ndim == 3:
            images = np.repeat(images[..., None], SLAB, axis=-1)
        arrays = {c: (v.astype(np.float32) + 1.0) / 2.0 for c, v in zip(channels, images, strict=True)}  # background 0, as in a scan
        x = torch.from_numpy(assemble(arrays))[None]
        self._captured.clear()
        with torch.inference_mode():
            self.net(x)
        deepest = self._captured[-1][0].flatten(1)
        return torch.cat([deepest.mean(1), deepest.std(1)]).numpy().astype(np.float64)
