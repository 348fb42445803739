"""Pick the compute device: CUDA, then Apple MPS, then CPU, unless the user names one."""

from __future__ import annotations

import torch

from .errors import MedSynthError

__all__ = ["select_device", "describe_device"]


def select_device(requested: str | None = None) -> torch.device:
    """Return the device to run on.

    Args:
        requested: ``None`` or ``"auto"`` picks cuda > mps > cpu; otherwise a torch device string
            (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``) that must be available here.
    """
    if requested in (None, "", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(requested)
    except (RuntimeError, ValueError):
        raise MedSynthError(f"Unknown device '{requested}'; use auto, cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise MedSynthError(f"Device '{requested}' was asked for but no CUDA GPU is available; use --device cpu.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise MedSynthError(
                f"Device '{requested}' does not exist; this machine has {torch.cuda.device_count()} CUDA GPU(s)."
            )
    elif device.type == "mps":
        if getattr(torch.backends, "mps", None) is None or not torch.backends.mps.is_available():
            raise MedSynthError("Device 'mps' was asked for but Apple MPS is not available; use --device cpu.")
    elif device.type != "cpu":
        raise MedSynthError(f"Unsupported device '{requested}'; use auto, cpu, cuda, cuda:N or mps.")
    return device


def describe_device(requested: str | None = None) -> str:
    """The device a run will use, with the GPU's name and torch's build: ``cuda:0 (NVIDIA H200; torch 2.13.0+cu128)``."""
    device = select_device(requested)
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        what = f"{torch.cuda.get_device_name(index)}, {torch.cuda.device_count()} GPU(s)"
        return f"cuda:{index} ({what}; torch {torch.__version__})"
    if device.type == "cpu" and not torch.cuda.is_available():
        cuda = "a CPU build of torch" if torch.version.cuda is None else "no NVIDIA GPU found"
        return f"cpu (torch {torch.__version__}; {cuda})"
    return f"{device} (torch {torch.__version__})"
