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


def test_models_and_generate_say_the_device_they_will_use(capsys, tmp_path):
    from medsynth_engine.cli import main
    from medsynth_engine.device import describe_device

    expected = str(select_device(None))
    assert describe_device(None).startswith(f"{expected} (torch {torch.__version__}")
    assert main(["models"]) == 0
    assert capsys.readouterr().out.splitlines()[0].startswith(f"Device: {expected} (torch ")
    assert main(["generate", "-n", "1", "--shape", "16", "--spacing", "9", "--channels", "t1", "--out", str(tmp_path / "s")]) == 0
    assert capsys.readouterr().err.startswith(f"Device: {expected} (")  # make demo shows it before the bar
