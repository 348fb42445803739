"""One training run of a 2D slice GAN around its trainer: base model, slices, logs, checkpoints, model folder, mosaics.

dcgan2d and stylegan2d differ only in their config, trainer, card text and tensors; a family subclasses
:class:`SliceGANRun` and fills those in (the ``family`` attribute and the methods that raise NotImplementedError).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from MedSynthLib.conventions import LABEL_CHANNEL

from ...data.layouts import find_cases
from ...data.preprocess import NEW_MODEL_FOV_MM, PreprocessSpec
from ...data.training_set import choose_channels
from ...errors import MedSynthError
from ...modelfile import ModelCard, load_model_folder, read_card, save_model_folder, write_atomic
from ...training.checkpoint import CHECKPOINT_DIR, load_checkpoint, read_state, save_checkpoint
from ...training.losslog import SAMPLES_DIR, append_loss, truncate_loss_log
from ...weights import model_folder
from .mosaic import write_mosaic
from .slices import SliceSet, load_slices

if TYPE_CHECKING:
    from ...training.finetune import FinetuneRequest

__all__ = ["SliceGANRun", "model_id_for"]

SAMPLE_SEED = 20260101
MOSAIC_SAMPLES = 6


class SliceGANRun:
    """What ``training.loop.run_steps`` drives: one process, rank 0 owns the output folder."""

    family = ""  # the family's name: ``--model <family>`` starts a new model, cards carry it as architecture.name
    default_resolution, default_width = 256, 512

    def __init__(self, request: FinetuneRequest, options: Any, device: torch.device, progress: Callable[[dict], None] | None) -> None:
        self.request, self.options, self.progress = request, options, progress
        self.out = Path(request.out)
        self.step, self.total = 0, request.steps
        state = read_state(self.out) if request.resume else None
        base = self._base_folder(request.model) if state is None else None
        if state is not None:
            self.config, self.spacing, self.origin = self.config_from_dict(state["config"]), float(state["spacing"]), state["base_origin"]
        else:
            self.config, self.spacing, self.origin = self._new_config(base)
        self.channels = tuple(self.config.image_channels) + ((LABEL_CHANNEL,) if self.config.labels else ())
        res = self.config.resolution
        self.spec = PreprocessSpec(shape=(res,) * 3, spacing=(self.spacing,) * 3)
        self.data = self._load_data()
        self.trainer = self.make_trainer(device)
        if state is not None:
            load_checkpoint(self.out, self.trainer)
            truncate_loss_log(self.out, lambda entry: entry["step"] <= self.trainer.steps_done)
        else:
            if base is not None:
                self.load_base(load_model_folder(base)[1])
            self.out.mkdir(parents=True, exist_ok=True)
            report = {"layout": self.data.layout, "subjects": self.data.subjects, "slices": len(self.data), "skipped": self.data.skipped}
            (self.out / CHECKPOINT_DIR).mkdir(exist_ok=True)
            write_atomic(self.out / CHECKPOINT_DIR / "data_report.json", (json.dumps(report, indent=1) + "\n").encode())
        self.step = self.trainer.steps_done

    # --- what a family fills in ---------------------------------------------------------------
    def config_from_dict(self, data: dict) -> Any:
        raise NotImplementedError

    def make_config(self, resolution: int, image_channels: list[str], labels: bool, width: int) -> Any:
        raise NotImplementedError

    def make_trainer(self, device: torch.device) -> Any:
        raise NotImplementedError

    def load_base(self, tensors: dict[str, torch.Tensor]) -> None:
        """Start the trainer's networks from a model folder's tensors."""
        raise NotImplementedError

    def model_tensors(self) -> dict[str, torch.Tensor]:
        """What the model folder holds (the plugin loads its generator; a later fine-tune loads all)."""
        raise NotImplementedError

    def training_card(self) -> dict[str, Any]:
        """The card's ``preprocessing.training``: loss, optimiser, regularisers, choices made."""
        raise NotImplementedError

    def mosaic_samples(self) -> np.ndarray:
        """(N, k [+ 4], R, R): image channels in [-1, 1], then label class scores when the model makes labels."""
        raise NotImplementedError

    # --- shared ---------------------------------------------------------------------------------
    def _base_folder(self, model: str) -> Path | None:
        """The model folder behind a shipped id or a folder path (None for a new model)."""
        if model == self.family:
            return None
        folder = model_folder(model)
        if folder is None or read_card(folder).architecture.get("name") != self.family:
            raise MedSynthError(
                f"Model '{model}' is not a {self.family} model; fine-tune {self.family} (a new model) or a {self.family} model folder."
            )
        return folder

    def _new_config(self, base: Path | None) -> tuple[Any, float, str]:
        request = self.request
        if base is not None:
            card = read_card(base)
            config = self.config_from_dict(card.architecture)
            for name, value, have in (("resolution", request.resolution, config.resolution), ("width", request.width, config.width)):
                if value is not None and value != have:
                    raise MedSynthError(f"The base model {request.model} has {name} {have}; leave out --{name} when continuing from it.")
            if request.channels is not None and tuple(request.channels) != tuple(card.channels):
                raise MedSynthError(f"The base model {request.model} makes {', '.join(card.channels)}; leave out --channels.")
            return config, float(card.spacing[0]), f"{card.id} ({base})"
        channels = request.channels
        if channels is None:
            _, cases = find_cases(Path(request.data), None)
            channels = choose_channels(cases, None)
        res = request.resolution or self.default_resolution
        images = [c for c in channels if c != LABEL_CHANNEL]
        config = self.make_config(res, images, LABEL_CHANNEL in channels, request.width or self.default_width)
        return config, request.spacing or NEW_MODEL_FOV_MM / res, f"{self.family} (random initialisation)"

    def _load_data(self) -> SliceSet:
        def reading(done: int, total: int) -> None:
            self.report({"message": f"reading and slicing case {done}/{total}"})

        data = load_slices(
            Path(self.request.data), self.spec, self.options.slices_per_case, channels=self.channels, skip_bad=self.request.skip_bad, progress=reading
        )
        for item in data.skipped:
            self.report({"message": f"skipped: {item['problem']}"})
        if len(data) < 2:
            raise MedSynthError(f"Training needs at least 2 slices; {self.request.data} gave {len(data)}.")
        return data

    # --- the loop's parts (training.loop.SteppedRun) ----------------------------------------
    def train_step(self) -> dict[str, float]:
        losses = self.trainer.step()
        self.step = self.trainer.steps_done
        return losses

    def step_text(self) -> str:
        return f"step {self.step}/{self.total} at {self.config.resolution}^2"

    def stop_text(self) -> str:
        return f"step {self.step}"

    def report(self, extra: dict[str, Any]) -> None:
        if self.progress:
            self.progress({"step": self.step, "total": self.total, "stage": f"{self.config.resolution}^2", **extra})

    def log(self, losses: dict[str, float]) -> None:
        append_loss(self.out, {"step": self.step, **losses})

    def checkpoint(self, losses: dict[str, float]) -> None:
        k = len(self.config.image_channels)
        write_mosaic(self.out / SAMPLES_DIR / f"mosaic_step{self.step}.png", self.mosaic_samples(), k, labels=self.config.labels)
        self._save_model(losses)
        meta = {
            "step": self.step, "request": self.request.to_json(), "config": self.config.to_dict(),
            "spacing": self.spacing, "base_origin": self.origin,
        }
        save_checkpoint(self.out, self.trainer, meta)

    def _save_model(self, losses: dict[str, float]) -> None:
        request, data, config = self.request, self.data, self.config
        what = ", ".join(config.image_channels) + (" + tumour labels" if config.labels else "")
        description = request.description or (
            f"{len(data)} axial slices ({what}) of {data.subjects} subject(s) from a {data.layout} folder supplied by the user"
            + (f"; {len(data.skipped)} case(s) skipped as unreadable or inconsistent" if data.skipped else "")
            + f"; started from {self.origin}."
        )
        card = ModelCard(
            id=model_id_for(self.out, self.family),
            kind="gan",
            architecture=config.to_dict(),
            channels=list(self.channels),
            shape=[config.resolution] * 2,
            spacing=[self.spacing] * 2,
            training_data=description,
            licence=request.licence or "Weights derive from the training data: the data owner's terms apply.",
            metrics={"steps": self.step, "last_losses": {k: round(v, 5) for k, v in losses.items()}},
            weights={"source": f"medsynth finetune, {self.step} of {request.steps} steps, batch {request.batch_size}"},
            preprocessing={
                **self.spec.to_dict(),
                "slices": f"axial; per subject the {self.options.slices_per_case} with the most head plus tumour voxels",
                "slice_thickness": self.spacing,
                "normalisation": {"range": [-1.0, 1.0], "output_dtype": "int16", "channels": data.scale},
                "data": {"layout": data.layout, "subjects": data.subjects, "slices": len(data), "skipped": len(data.skipped)},
                "training": self.training_card(),
            },
        )
        save_model_folder(self.out, card, self.model_tensors())


def model_id_for(out: Path, family: str) -> str:
    """The card id of a model folder: ``<family>-<folder name>`` in lower case."""
    name = re.sub(r"[^a-z0-9-]+", "-", out.name.lower()).strip("-") or "model"
    return name if name.startswith(family) else f"{family}-{name}"
