"""Which torch build the engine environment gets: a CUDA build the NVIDIA driver can run, else the CPU build.

The rule follows light-the-torch (which Slicer's PyTorch extension uses): a CUDA major version runs on a driver at
least as new as NVIDIA's minimum for it (CUDA toolkit release notes, "CUDA Toolkit and Minimum Required Driver
Version for CUDA Minor Version Compatibility"); the newest build the driver can run is recommended. The user may
override the choice in the dialog.
"""

from __future__ import annotations

import platform
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["TORCH_VERSION", "TorchBuild", "BUILDS", "build_named", "parse_driver_version", "detect_driver_version",
           "recommended_build"]

TORCH_VERSION = "2.13.0"  # requirements.txt's pin: the engine is tested with this version only
PYTORCH_INDEX = "https://download.pytorch.org/whl/"

# (build, minimum driver on Linux, minimum driver on Windows), newest first. CUDA 13 needs the 580 driver series;
# every CUDA 12 build runs on a 525.60.13 (Windows: 528.33) driver through minor version compatibility.
_CUDA_DRIVERS: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...] = (
    ("cu130", (580, 65, 6), (580, 0)),
    ("cu128", (525, 60, 13), (528, 33)),
    ("cu126", (525, 60, 13), (528, 33)),
)


@dataclass(frozen=True)
class TorchBuild:
    """One torch build: its name (``cpu``, ``cu128``...), the package index it comes from (None: PyPI's default)."""

    name: str
    index_url: str | None
    download_gb: float  # roughly what pip downloads for it, for the disk-space check and the dialog

    @property
    def label(self) -> str:
        kind = "CPU only" if self.name == "cpu" else f"NVIDIA GPU, CUDA {self.name[2:-1]}.{self.name[-1]}"
        return f"torch {TORCH_VERSION} ({kind}, about {self.download_gb:g} GB)"


def _cpu_build(system: str) -> TorchBuild:
    # PyPI's Linux torch is a CUDA build (several GB of NVIDIA libraries); PyTorch's own cpu index has the small one.
    # On macOS PyPI's build is the only one (CPU and Apple's MPS).
    return TorchBuild("cpu", None if system == "Darwin" else PYTORCH_INDEX + "cpu", 0.3)


BUILDS: tuple[str, ...] = ("cpu",) + tuple(name for name, _linux, _windows in _CUDA_DRIVERS)


def build_named(name: str, system: str | None = None) -> TorchBuild:
    """The build called ``name`` (one of :data:`BUILDS`) for this operating system."""
    system = system or platform.system()
    if name == "cpu":
        return _cpu_build(system)
    if name not in BUILDS or system == "Darwin":
        raise ValueError(f"There is no torch build '{name}' for {system}; choose one of: "
                         + ", ".join(BUILDS if system != "Darwin" else ("cpu",)) + ".")
    return TorchBuild(name, PYTORCH_INDEX + name, 3.5)


def parse_driver_version(text: str) -> tuple[int, ...] | None:
    """The first driver version in ``nvidia-smi --query-gpu=driver_version --format=csv,noheader`` output."""
    for line in text.splitlines():
        match = re.fullmatch(r"\s*(\d+(?:\.\d+){1,2})\s*", line)
        if match:
            return tuple(int(part) for part in match.group(1).split("."))
    return None


def detect_driver_version(run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> tuple[int, ...] | None:
    """The NVIDIA driver's version from ``nvidia-smi``, or None when there is no NVIDIA driver (or it does not answer)."""
    try:
        result = run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                     text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_driver_version(result.stdout) if result.returncode == 0 else None


def recommended_build(driver: tuple[int, ...] | None, system: str | None = None) -> tuple[TorchBuild, str]:
    """The build to offer first and one sentence saying why (shown in the dialog)."""
    system = system or platform.system()
    if system == "Darwin":
        return _cpu_build(system), "macOS: PyPI's torch build (CPU and Apple GPUs)."
    if driver is None:
        return _cpu_build(system), "No NVIDIA driver found (nvidia-smi): the CPU build."
    shown = ".".join(str(part) for part in driver)
    for name, linux, windows in _CUDA_DRIVERS:
        if driver >= (windows if system == "Windows" else linux):
            return build_named(name, system), f"NVIDIA driver {shown}: the newest CUDA build it runs ({name})."
    oldest = ".".join(str(p) for p in (_CUDA_DRIVERS[-1][2] if system == "Windows" else _CUDA_DRIVERS[-1][1]))
    return _cpu_build(system), (f"NVIDIA driver {shown} is older than {oldest}, which torch {TORCH_VERSION}'s CUDA "
                                "builds need: the CPU build (update the driver for GPU use).")
