"""Device choice: cuda > mps > cpu, or what the user names, if it exists."""

import pytest
import torch
from medsynth_engine.device import select_device
from medsynth_engine.errors import MedSynthError


def test_auto_picks_the_best_available():
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert select_device(None).type == expected == select_device("auto").type


def test_cpu_can_always_be_named():
    assert select_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_missing_gpu_is_a_clear_error():
    with pytest.raises(MedSynthError, match="no CUDA GPU"):
        select_device("cuda")


@pytest.mark.parametrize("name", ["gpu0", "tpu", "cuda:x"])
def test_nonsense_devices_are_refused(name):
    with pytest.raises(MedSynthError, match="device"):
        select_device(name)
