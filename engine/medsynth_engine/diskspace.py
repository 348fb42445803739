"""Refuse a set the file system cannot hold before its first case is made, instead of failing half-way.

``generate`` estimates a case from its shape and channels (igzip level 1 leaves MR volumes at well under
``GZIP_RATIO`` of their raw size; the phantom's at a fifth), ``export`` sums its source files; the set writer
asks for that many bytes for the cases still to write, with ``MARGIN`` and ``RESERVE_BYTES`` on top.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from shutil import disk_usage

from MedSynthLib.conventions import LABEL_CHANNEL

from .errors import MedSynthError

__all__ = ["case_bytes", "check_space", "MARGIN", "RESERVE_BYTES", "GZIP_RATIO"]

MARGIN = 1.2
RESERVE_BYTES = 64 << 20  # the journal, the manifest, and room for the rest of the system
GZIP_RATIO = 0.7
_HEADER_BYTES = 352


def case_bytes(shape: Iterable[int], channels: Iterable[str]) -> int:
    """Estimated bytes of one written case: int16 images (uint8 labels), gzip-compressed, with their headers."""
    voxels = 1
    for side in shape:
        voxels *= int(side)
    raw = sum(voxels * (1 if channel == LABEL_CHANNEL else 2) + _HEADER_BYTES for channel in channels)
    return int(raw * GZIP_RATIO)


def check_space(out: Path, needed: int) -> None:
    """One sentence if the file system that will hold ``out`` has less free than ``needed`` bytes plus the margin."""
    if needed <= 0:
        return
    folder = Path(out).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = disk_usage(folder).free
    wanted = int(needed * MARGIN) + RESERVE_BYTES
    if free < wanted:
        raise MedSynthError(
            f"{out} needs about {_size(wanted)} (the set and a margin) but its file system has {_size(free)} free; "
            "free some space or choose an --out on another disk."
        )


def _size(count: int) -> str:
    value, unit = float(count), "bytes"
    for bigger in ("KB", "MB", "GB", "TB"):
        if value < 1000:
            break
        value, unit = value / 1000, bigger
    return f"{value:.0f} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
