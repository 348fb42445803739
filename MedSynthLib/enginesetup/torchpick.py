"""``make setup``'s torch build, chosen as Slicer's "Set up engine" chooses it (``torchbuild``'s driver table).

``python -m MedSynthLib.enginesetup.torchpick`` prints the pip arguments that install the pinned torch (one line,
for the Makefile) and says on stderr which build and why: the newest CUDA build the NVIDIA driver runs when
``nvidia-smi`` answers, else the CPU build. ``MEDSYNTH_TORCH=cpu|cu126|cu128|cu130`` overrides the choice.
The local version label (``+cpu``, ``+cu128``) is pinned too, so a set-up switches builds when the choice changes.
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence

from .torchbuild import BUILDS, TORCH_VERSION, TorchBuild, build_named, detect_driver_version, recommended_build

__all__ = ["choose_build", "pip_arguments", "main", "OVERRIDE"]

OVERRIDE = "MEDSYNTH_TORCH"


def choose_build(environ: Mapping[str, str], run: Callable[..., subprocess.CompletedProcess] = subprocess.run,
                 system: str | None = None) -> tuple[TorchBuild, str]:
    """The build to install and one sentence saying why; a bad ``MEDSYNTH_TORCH`` raises ValueError with a sentence."""
    system = system or platform.system()
    wanted = environ.get(OVERRIDE, "").strip().lower()
    if wanted and wanted != "auto":
        if wanted not in BUILDS:
            raise ValueError(f"{OVERRIDE}={wanted} is not a torch build; use auto or one of: {', '.join(BUILDS)}.")
        return build_named(wanted, system), f"{OVERRIDE}={wanted}."
    return recommended_build(detect_driver_version(run), system)


def pip_arguments(build: TorchBuild) -> list[str]:
    """``pip install`` arguments for ``build`` of the pinned torch, without its dependencies: the requirements'
    install that follows brings them from the usual index, so PyTorch's index is asked for torch alone (offline,
    pip retries an unreachable index for every package it asks it for)."""
    if build.index_url is None:  # macOS: PyPI's build, which has no local label
        return [f"torch=={TORCH_VERSION}", "--no-deps"]
    return [f"torch=={TORCH_VERSION}+{build.name}", "--no-deps", "--index-url", build.index_url]


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Print the pip arguments on stdout and the choice on stderr; exit 2 on a bad override."""
    try:
        build, why = choose_build(os.environ if environ is None else environ)
    except ValueError as exc:
        print(f"medsynth setup: error: {exc}", file=sys.stderr)
        return 2
    print(f"medsynth setup: {build.label}: {why}", file=sys.stderr)
    print(" ".join(pip_arguments(build)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
