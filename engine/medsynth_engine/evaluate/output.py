"""Writing evaluation results: JSON through a temporary file and a rename, with one-sentence errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import MedSynthError
from ..modelfile import write_atomic

__all__ = ["write_json"]


def write_json(path: Path, data: Any) -> Path:
    """Write ``data`` as indented JSON at ``path`` atomically; the folder must exist and be writable."""
    path = Path(path)
    if not path.parent.is_dir():
        raise MedSynthError(f"The folder {path.parent} does not exist; create it or choose another place for {path.name}.")
    try:
        write_atomic(path, (json.dumps(data, indent=2) + "\n").encode())
    except OSError as exc:
        raise MedSynthError(f"Could not write {path}: {exc.strerror or exc}.") from None
    return path
