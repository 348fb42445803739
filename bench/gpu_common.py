"""What the lent-GPU scripts (gpu_recipe.py, gpu_channel.py, gpu_ship.py) share: timed steps and the machine line."""

from __future__ import annotations

import os
import platform
import sys
import time
from collections.abc import Callable
from typing import Any


def timed(timings: dict[str, float], name: str, fn: Callable[[], Any]) -> Any:
    """Run ``fn``, record its wall seconds in ``timings[name]`` and print them."""
    t0 = time.perf_counter()
    result = fn()
    timings[name] = round(time.perf_counter() - t0, 1)
    print(f"{name}: {timings[name]} s", flush=True)
    return result


def machine(device: str) -> dict[str, Any]:
    """The device, torch, Python and CPU count a result was measured on."""
    import torch

    return {"device": torch.cuda.get_device_name(0) if device == "cuda" else platform.processor() or platform.machine(),
            "torch": torch.__version__, "python": sys.version.split()[0], "cpus": os.cpu_count()}
