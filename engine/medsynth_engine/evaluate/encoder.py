"""Learned image features for precision/recall: the encoder of the project's own segmenter (seg-phantom).

Why this encoder: nothing may be downloaded inside a hospital, so there is no Inception or MedicalNet; the
shipped seg-phantom U-Net was trained inside the project to find tumours in t1/t1ce/t2/flair, none of the
generators it judges shares its weights, and its deepest level summarises anatomy and lesion at a 24 mm
scale. A case's feature vector is the mean and the standard deviation of each of the bottleneck's channels.
Input: the case on the fixed evaluation grid (64^3 at 3 mm), each sequence normalised inside the head as
the segmenter was trained; a missing sequence is marked absent, as in training.

A 2D slice (the 2D families' cases) is encoded as a slab of ``SLAB`` copies of itself, the network's total
stride, so the bottleneck holds one plane of the slice's features: per-slice features from the same encoder,
with no other network to train or download.
"""

from __future__ import annotations

import numpy as np
import torch

from ..models.channelnet.inputs import assemble
from ..models.channelnet.model import ChannelModel
from ..weights import WEIGHTS_DIR

__all__ = ["ENCODER_ID", "SLAB", "SegEncoder"]

ENCODER_ID = "seg-phantom"
#: Copies of a 2D slice stacked into the slab the 3D encoder reads (its three stride-2 levels: 2^3).
SLAB = 8


class SegEncoder:
    """Bottleneck features of the shipped segmenter for (C, X, Y, Z) volumes in [-1, 1]."""

    def __init__(self) -> None:
        model = ChannelModel(WEIGHTS_DIR / ENCODER_ID, expected="segnet")
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
