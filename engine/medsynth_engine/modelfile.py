"""Model files: safetensors weights plus a JSON model card. Nothing is ever unpickled.

A model folder holds ``model.json`` (the card) and, for learned models, ``model.safetensors``. The card
records the weights' SHA-256, which is checked on every load, so a swapped or truncated file is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import MedSynthError
from .killpoint import killpoint

__all__ = ["ModelCard", "CARD_FILE", "WEIGHTS_FILE", "sha256_file", "write_atomic", "save_model_folder", "load_model_folder"]

CARD_FILE = "model.json"
WEIGHTS_FILE = "model.safetensors"
#: The card being written with new weights, until both are in place (hidden; see ``save_model_folder``).
NEXT_CARD_FILE = ".model.json.next"
_KINDS = ("procedural", "gan", "diffusion", "segmentation", "translation")


@dataclass
class ModelCard:
    """What a model is, what it makes, and where it came from.

    Attributes:
        id: model id (``phantom``, ``pgan3d-phantom-64``...).
        kind: one of procedural, gan, diffusion, segmentation, translation.
        architecture: ``{"name": <plugin architecture>, ...its constructor parameters}``.
        channels: channels the model produces, canonical names.
        shape: output voxel grid (X, Y, Z).
        spacing: output voxel size in mm.
        training_data: plain description of the data it learned from (never file names of patients).
        licence: licence of the weights (and of the data they derive from).
        metrics: evaluation figures (diversity, distances...).
        weights: ``{"file", "sha256", "source"}``; ``file`` is None for procedural models.
        preprocessing: how training data was prepared, so outputs map back to physical units.
        software_version: MedSynth version that wrote the card.
    """

    id: str
    kind: str
    architecture: dict[str, Any]
    channels: list[str]
    shape: list[int]
    spacing: list[float]
    training_data: str
    licence: str
    metrics: dict[str, Any] = field(default_factory=dict)
    weights: dict[str, Any] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    software_version: str = ""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise MedSynthError(f"Model card kind '{self.kind}' is not one of {', '.join(_KINDS)}.")
        if "name" not in self.architecture:
            raise MedSynthError(f"Model card of '{self.id}' has no architecture name.")
        if len(self.shape) not in (2, 3) or len(self.spacing) != len(self.shape):
            raise MedSynthError(f"Model card of '{self.id}' needs a 3D (or, for a 2D model, 2D) shape and spacing of the same length.")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ModelCard:
        known = set(ModelCard.__dataclass_fields__)
        missing = {"id", "kind", "architecture", "channels", "shape", "spacing", "training_data", "licence"} - set(data)
        if missing:
            raise MedSynthError("Model card lacks the field(s) " + ", ".join(sorted(missing)) + ".")
        return ModelCard(**{k: v for k, v in data.items() if k in known})


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model_folder(folder: Path, card: ModelCard, tensors: dict | None = None) -> ModelCard:
    """Write weights (if any) and the card into ``folder``; returns the card as written.

    Two files cannot be renamed at once, so the new card goes first to ``.model.json.next``: a process killed after
    the weights' rename leaves new weights, the old card and that next card, and ``read_card`` takes the card whose
    SHA-256 the weights match. The folder is the old model or the new one at every moment, never a mixture.
    """
    from . import __version__

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    blob = None
    if tensors is not None:
        from safetensors.torch import save

        blob = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})
        card.weights = {**card.weights, "file": WEIGHTS_FILE, "sha256": hashlib.sha256(blob).hexdigest()}
    card.software_version = __version__
    text = (json.dumps(card.to_dict(), indent=2) + "\n").encode()
    if blob is not None:
        write_atomic(folder / NEXT_CARD_FILE, text)
        write_atomic(folder / WEIGHTS_FILE, blob)
        killpoint("model.weights")
    write_atomic(folder / CARD_FILE, text)
    (folder / NEXT_CARD_FILE).unlink(missing_ok=True)
    killpoint("model.card")
    return card


def _card_at(path: Path) -> ModelCard:
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MedSynthError(f"The model card {path} is not valid JSON ({exc.__class__.__name__}).") from None
    if not isinstance(data, dict):
        raise MedSynthError(f"The model card {path} must hold a JSON object.")
    return ModelCard.from_dict(data)


def read_card(folder: Path) -> ModelCard:
    """The card of a model folder; where a write was killed between the weights and the card, the card that the
    weights on disk match (``save_model_folder``)."""
    path = Path(folder) / CARD_FILE
    if not path.is_file():
        raise MedSynthError(f"{folder} is not a model folder: it has no {CARD_FILE}.")
    card = _card_at(path)
    pending = Path(folder) / NEXT_CARD_FILE
    if pending.is_file() and (Path(folder) / WEIGHTS_FILE).is_file():
        newer = _card_at(pending)  # written atomically: complete or absent
        if newer.weights.get("sha256") and newer.weights.get("sha256") == sha256_file(Path(folder) / WEIGHTS_FILE):
            return newer
    return card


def load_model_folder(folder: Path, device: str = "cpu") -> tuple[ModelCard, dict]:
    """Read the card and the weights of a model folder, checking the weights' SHA-256 first."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    card = read_card(folder)
    name = card.weights.get("file")
    if not name:
        return card, {}
    path = folder / Path(name).name
    if not path.is_file():
        raise MedSynthError(f"The weights file {path} named by the model card is missing.")
    expected = card.weights.get("sha256")
    if expected and sha256_file(path) != expected:
        raise MedSynthError(f"The weights file {path} does not match the SHA-256 in its model card; it was changed or truncated.")
    try:
        return card, load_file(str(path), device=device)
    except (SafetensorError, OSError, ValueError) as exc:
        raise MedSynthError(f"The weights file {path} is not a readable safetensors file ({exc}).") from None
