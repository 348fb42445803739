"""The weights that ship inside the package: ``weights/<model id>/`` (``model.json`` + ``model.safetensors`` +
``preview.png``), and the one place that finds them."""

from __future__ import annotations

from pathlib import Path

__all__ = ["WEIGHTS_DIR", "shipped_folder", "model_folder"]

WEIGHTS_DIR = Path(__file__).resolve().parent
CARD_NAME = "model.json"


def shipped_folder(model_id: str) -> Path | None:
    """The folder of a shipped model id, or None if no such weights are installed."""
    if not model_id or "/" in model_id or "\\" in model_id or model_id.startswith("."):
        return None
    folder = WEIGHTS_DIR / model_id
    return folder if (folder / CARD_NAME).is_file() else None


def model_folder(model: str) -> Path | None:
    """The folder behind a model folder path or a shipped model id; None if neither holds a model card."""
    if (Path(model) / CARD_NAME).is_file():
        return Path(model)
    return shipped_folder(model)
