"""Service fixtures; the engine itself (``engine``, ``client``, ``allowed_root``) is Testing/conftest.py's, shared."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def training_set(make_phantom_set) -> Path:
    """A tiny BraTS-style set (MR channels and labels) to fine-tune on."""
    return make_phantom_set(n=4, shape=(24, 24, 24), spacing=6.0, channels="t1,t1ce,t2,flair,seg")
