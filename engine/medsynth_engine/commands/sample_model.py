"""``medsynth evaluate --model``: evaluate a model (shipped id or a ``finetune`` folder) by sampling it first.

The command composes generation and evaluation (evaluate/ never imports generation).

The samples go to a hidden scratch folder beside the report and are removed afterwards, whatever happens:
only the report is the result, and no synthetic set is left lying around unaudited.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..generate import GenerateRequest, generate_set
from ..registry import default_registry

__all__ = ["sampled_set"]


@contextmanager
def sampled_set(model: str, n: int, seed: int, beside: Path, progress: Callable[[int, int], None] | None = None) -> Iterator[Path]:
    """``n`` cases of ``model`` (its own grid, images and labels) in a scratch folder that exists inside the block."""
    scratch = beside.parent / f".{beside.name}.samples-{secrets.token_hex(4)}"
    try:
        generate_set(GenerateRequest(model=model, n=n, seed=seed, out=scratch / "set"), default_registry(), progress)
        yield scratch / "set"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
