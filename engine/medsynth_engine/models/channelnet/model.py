"""A trained channel model (segnet or mr2ct) that predicts a new channel for a case on the case's own grid.

The case's sequences are resampled to the model's spacing (RAS), normalised (``inputs``), run through the
network by MONAI's sliding-window inferer (Gaussian-weighted 25% overlap, so any volume size works), and the
output is resampled linearly back onto the case's exact grid: class probabilities for segnet (then argmax),
HU for mr2ct (then clipped to the scanner range).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from monai.inferers import sliding_window_inference

from ...errors import MedSynthError
from ...modelfile import ModelCard, load_model_folder
from .inputs import HU_RANGE, SEQUENCES, ModelGrid, assemble
from .network import ChannelNetConfig, build_unet

__all__ = ["ChannelModel", "LABEL_CODES", "NET_PREFIX", "CT_SCALE", "SW_BATCH", "run_network", "load_segnet", "load_mr2ct"]

LABEL_CODES = np.array([0, 1, 2, 4], dtype=np.uint8)
NET_PREFIX = "net."
#: mr2ct's network predicts HU / CT_SCALE.
CT_SCALE = 1000.0
#: architecture name -> the channel it makes.
CHANNEL_OF = {"segnet": "seg", "mr2ct": "ct"}


#: Sliding windows per network call: batching the windows is 2.3x faster on a 2-core CPU than one at a time
#: (bench/results/add_channel.md); the benchmark sets 1 for its eager reference.
SW_BATCH = 8


def run_network(net: torch.nn.Module, x: torch.Tensor, patch: int, *, device: torch.device, amp: bool | None) -> torch.Tensor:
    """Sliding-window forward pass of ``x`` (1, C, X, Y, Z) in inference mode; float32 result on the CPU.

    ``amp`` None takes the fast path where it helps: bf16 autocast and channels_last_3d on CUDA, plain float32
    on CPUs (there both were neutral or slower; bench/results/add_channel.md). True forces bf16 +
    channels_last_3d; False is float32.
    """
    bf16 = bool(amp) or (amp is None and device.type == "cuda")
    fmt = torch.channels_last_3d if bf16 else torch.contiguous_format
    net = net.to(device=device, memory_format=fmt)

    def predictor(window: torch.Tensor) -> torch.Tensor:
        return net(window.to(memory_format=fmt)).float()

    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with torch.inference_mode(), autocast:
        y = sliding_window_inference(
            x.to(device), roi_size=(patch,) * 3, sw_batch_size=SW_BATCH, predictor=predictor, overlap=0.25, mode="gaussian"
        )
    return y.float().cpu()


class ChannelModel:
    """A segnet or mr2ct model folder, ready to add its channel to cases."""

    def __init__(self, folder: Path, expected: str | None = None) -> None:
        self.folder = Path(folder)
        self.card: ModelCard
        self.card, tensors = load_model_folder(self.folder)
        name = self.card.architecture.get("name")
        if name not in CHANNEL_OF:
            raise MedSynthError(f"The model {self.card.id} is a '{name}' model, not a channel model (segnet or mr2ct).")
        if expected is not None and name != expected:
            raise MedSynthError(f"The model {self.card.id} is a '{name}' model; the {CHANNEL_OF[expected]} channel needs a {expected} model.")
        self.channel = CHANNEL_OF[name]
        self.network_seconds = 0.0  # of the last predict, for the benchmark
        self.config = ChannelNetConfig.from_dict(self.card.architecture)
        self.net = build_unet(self.config).eval().requires_grad_(False)
        state = {k[len(NET_PREFIX) :]: v for k, v in tensors.items() if k.startswith(NET_PREFIX)}
        try:
            self.net.load_state_dict(state)
        except RuntimeError:
            raise MedSynthError(f"The weights in {folder} do not fit the {name} architecture its card describes.") from None

    @property
    def id(self) -> str:
        return self.card.id

    @property
    def spacing(self) -> tuple[float, float, float]:
        return tuple(float(s) for s in self.card.spacing)  # type: ignore[return-value]

    def predict(
        self,
        arrays: dict[str, np.ndarray],
        affine: np.ndarray,
        *,
        device: torch.device,
        amp: bool | None = None,
        progress: Callable[[float, str], None] | None = None,
    ) -> np.ndarray:
        """The new channel on the grid of ``arrays`` (all on one grid, ``affine``): uint8 BraTS codes or int16 HU."""
        given = [c for c in SEQUENCES if c in arrays]
        if not given:
            raise MedSynthError("The case has no MR sequence (t1, t1ce, t2 or flair) to work from.")
        grid = ModelGrid.of(arrays[given[0]], affine, self.spacing)
        mr = {c: grid.model_array() if c == given[0] else grid.to_model(arrays[c], affine, self.spacing) for c in given}
        if progress:
            progress(0.2, f"resampled {', '.join(given)} to {self.spacing[0]:g} mm")
        x = torch.from_numpy(assemble(mr))[None]
        started = time.perf_counter()
        y = run_network(self.net, x, self.config.patch, device=device, amp=amp)[0].numpy()
        self.network_seconds = time.perf_counter() - started
        if progress:
            progress(0.7, "network done; resampling onto the case's grid")
        if self.channel == "seg":
            probs = np.exp(y - y.max(axis=0, keepdims=True))
            probs /= probs.sum(axis=0, keepdims=True)
            back = np.stack([grid.back(p, 1.0 if i == 0 else 0.0) for i, p in enumerate(probs)])
            return LABEL_CODES[np.argmax(back, axis=0)]
        hu = grid.back(y[0] * CT_SCALE, HU_RANGE[0])
        return np.clip(np.rint(hu), *HU_RANGE).astype(np.int16)


def load_segnet(folder: Path) -> ChannelModel:
    """The ``seg`` family's loader: a segnet model folder."""
    return ChannelModel(folder, expected="segnet")


def load_mr2ct(folder: Path) -> ChannelModel:
    """The ``mr2ct`` family's loader: an mr2ct model folder."""
    return ChannelModel(folder, expected="mr2ct")
