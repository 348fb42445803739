"""Real engine processes on loopback, started through MedSynthLib's launcher with this interpreter."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_helpers import start_engine, stop_engine


@pytest.fixture(scope="session")
def allowed_root(tmp_path_factory) -> Path:
    """Every folder the tests make lies under pytest's base temp folder; engines may use it."""
    return tmp_path_factory.getbasetemp().resolve()


@pytest.fixture(scope="session")
def engine(tmp_path_factory, allowed_root):
    process = start_engine(tmp_path_factory.mktemp("engine-state"), allowed_root)
    yield process
    stop_engine(process)


@pytest.fixture(scope="session")
def client(engine):
    return engine.client(timeout=60)


@pytest.fixture(scope="session")
def training_set(make_phantom_set) -> Path:
    """A tiny BraTS-style set (MR channels and labels) to fine-tune on."""
    return make_phantom_set(n=4, shape=(24, 24, 24), spacing=6.0, channels="t1,t1ce,t2,flair,seg")
