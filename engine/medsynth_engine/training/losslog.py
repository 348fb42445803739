"""The loss log every trainer writes (``loss.jsonl``: one JSON line per logged step) and its truncation on resume."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..modelfile import write_atomic

__all__ = ["LOSS_LOG", "SAMPLES_DIR", "append_loss", "truncate_loss_log"]

LOSS_LOG = "loss.jsonl"
#: Where trainers put their sample mosaics (``samples/mosaic_step<N>.png``).
SAMPLES_DIR = "samples"


def append_loss(out: Path, entry: dict[str, Any]) -> None:
    """Append one line (``entry`` plus the wall-clock time) to ``out/loss.jsonl``."""
    with open(Path(out) / LOSS_LOG, "a") as handle:
        handle.write(json.dumps({**entry, "time": round(time.time(), 3)}) + "\n")


def truncate_loss_log(out: Path, keep: Callable[[dict[str, Any]], bool]) -> None:
    """Drop the lines written after the checkpoint a run resumes from (those ``keep`` refuses), atomically."""
    path = Path(out) / LOSS_LOG
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines() if _entry(line) is not None and keep(_entry(line))]
    write_atomic(path, ("\n".join(kept) + "\n" if kept else "").encode())


def _entry(line: str) -> dict[str, Any] | None:
    """One logged line, or None for a blank one or the torn last line of a run killed while appending it."""
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        return None
    return entry if isinstance(entry, dict) else None
