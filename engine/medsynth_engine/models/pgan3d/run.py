"""One training run's state around the trainer: data, schedule, logs, checkpoints, model folder, mosaics."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from MedSynthLib.conventions import LABEL_CHANNEL

from ...data.layouts import find_cases
from ...data.preprocess import PreprocessSpec
from ...data.training_set import TrainingSet, choose_channels, load_training_set
from ...errors import MedSynthError
from ...modelfile import ModelCard, read_card, save_model_folder, write_atomic
from ...training.checkpoint import CHECKPOINT_DIR, load_checkpoint, read_state, save_checkpoint
from ...training.diversity import pairwise_ms_ssim
from ...training.losslog import SAMPLES_DIR, append_loss, truncate_loss_log
from ...training.mosaic import write_mosaic
from .base import SCRATCH_IDS, BaseModel, folder_of, load_matching, resolve_base
from .network import PGANConfig, stage_resolution
from .options import PGANOptions
from .schedule import Schedule
from .trainer import GANTrainer, TrainSettings

if TYPE_CHECKING:
    from ...training.distributed import DistContext
    from ...training.finetune import FinetuneRequest

__all__ = ["TrainingRun", "model_id_for"]

SAMPLE_SEED = 20260101
MOSAIC_SAMPLES = 4
DIVERSITY_SAMPLES = 8


class TrainingRun:
    def __init__(self, request: FinetuneRequest, options: PGANOptions, context: DistContext, progress: Callable[[dict], None] | None) -> None:
        self.request, self.options, self.context, self.progress = request, options, context, progress
        self.rank0 = context.rank == 0
        self.out = Path(request.out)
        state = read_state(self.out) if request.resume else None
        if state is not None:
            config = PGANConfig.from_dict(state["config"])
            spacing = float(state["spacing"])
            base = BaseModel(config=config, spacing=spacing, start_stage=int(state["start_stage"]), origin=state["base_origin"])
            channels = tuple(state["channels"])
        else:
            channels = self._channels()
            base = resolve_base(request.model, channels, request.resolution, request.spacing, request.width)
        self.base, self.config, self.channels = base, base.config, channels
        res = self.config.resolution
        self.spec = PreprocessSpec(shape=(res,) * 3, spacing=(base.spacing,) * 3)
        self.data = self._load_data()
        settings = TrainSettings(
            batch_size=request.batch_size,
            augment=options.augment,
            amp=request.amp,
            freeze_stages=options.freeze_stages,
            grad_checkpoint=options.grad_checkpoint,
            channels_last=context.device.type == "cpu",  # oneDNN's 3D convolutions are ~2.5x faster so (bench/)
        )
        self.trainer = GANTrainer(self.config, self.data, settings, context.device, request.seed, rank=context.rank, world=context.world)
        self.schedule = Schedule(request.planned_steps, self.config.stages, base.start_stage)  # extra steps: the final stage
        self.metrics: dict[str, Any] = {"diversity_history": []}
        if state is not None:
            load_checkpoint(self.out, self.trainer)
            self.metrics = state.get("metrics", self.metrics)
            if self.rank0:
                truncate_loss_log(self.out, lambda entry: entry["step"] <= self.trainer.steps_done)
        else:
            self._load_base()
            if self.rank0:
                self.out.mkdir(parents=True, exist_ok=True)
                self._write_data_report()
        self.step = self.trainer.steps_done
        self.total = request.steps
        self.real_diversity = self._real_diversity()

    # --- setup -------------------------------------------------------------------------------
    def _channels(self) -> tuple[str, ...]:
        request = self.request
        if request.channels is not None:
            return tuple(request.channels)
        if request.model not in SCRATCH_IDS:
            folder = folder_of(request.model)
            if folder is not None:
                return tuple(read_card(folder).channels)
        _, cases = find_cases(Path(request.data), None)
        return choose_channels(cases, None)

    def _load_data(self) -> TrainingSet:
        def reading(done: int, total: int) -> None:
            self.report({"message": f"reading and checking case {done}/{total}"})

        data = load_training_set(
            Path(self.request.data), self.spec, channels=self.channels, skip_bad=self.request.skip_bad, progress=reading
        )
        for item in data.skipped:
            self.report({"message": f"skipped: {item['problem']}"})
        if len(data) < 2:
            raise MedSynthError(f"Training needs at least 2 usable cases; {self.request.data} has {len(data)}.")
        return data

    def _load_base(self) -> None:
        base = self.base
        if not base.generator:
            return
        fresh_g = load_matching(self.trainer.G, base.generator)
        load_matching(self.trainer.G_ema, base.generator)
        fresh_d = load_matching(self.trainer.D, base.discriminator)
        if fresh_g or fresh_d:
            self.report({"message": f"started {len(fresh_g)} generator and {len(fresh_d)} critic tensors afresh (new channels or stages)"})

    def _write_data_report(self) -> None:
        report = {"layout": self.data.layout, "cases": len(self.data), "channels": list(self.channels), "skipped": self.data.skipped}
        folder = self.out / CHECKPOINT_DIR
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "data_report.json", (json.dumps(report, indent=1) + "\n").encode())

    def _real_diversity(self) -> dict[int, float | None]:
        n = min(DIVERSITY_SAMPLES, len(self.data)) // 2 * 2
        images = self.data.images[:n]
        out: dict[int, float | None] = {}
        for stage in range(self.config.stages):
            factor = self.config.resolution // stage_resolution(stage)
            out[stage] = pairwise_ms_ssim(torch.nn.functional.avg_pool3d(images, factor) if factor > 1 else images)
        return out

    # --- the loop's parts --------------------------------------------------------------------
    def step_text(self) -> str:
        return f"step {self.step}/{self.total} at {self.stage_text()}"

    def stop_text(self) -> str:
        return f"step {self.step}"

    def stage_text(self, step: int | None = None) -> str:
        stage, alpha = self.schedule.at(max(0, (self.step if step is None else step) - 1))
        text = f"{stage_resolution(stage)}^3"
        return text if alpha >= 1.0 else f"{text} (fade-in {alpha:.0%})"

    def train_step(self) -> dict[str, float]:
        stage, alpha = self.schedule.at(self.step)
        losses = self.trainer.step(stage, alpha)
        self.step += 1
        return losses

    def report(self, extra: dict[str, Any]) -> None:
        if not (self.rank0 and self.progress):
            return
        step = getattr(self, "step", 0)
        stage = self.stage_text() if hasattr(self, "schedule") else ""
        self.progress({"step": step, "total": self.request.steps, "stage": stage, **extra})

    def log(self, losses: dict[str, float]) -> None:
        if not self.rank0:
            return
        stage, alpha = self.schedule.at(self.step - 1)
        append_loss(self.out, {"step": self.step, "stage": stage_resolution(stage), "alpha": round(alpha, 4), **losses})

    def checkpoint(self, losses: dict[str, float]) -> None:
        if not self.rank0:
            return
        stage, alpha = self.schedule.at(self.step - 1)
        samples = self.trainer.sample(max(MOSAIC_SAMPLES, DIVERSITY_SAMPLES), SAMPLE_SEED, stage, alpha)
        images = len(self.config.image_channels)
        write_mosaic(self.out / SAMPLES_DIR / f"mosaic_step{self.step}.png", samples[:MOSAIC_SAMPLES].numpy(), images, labels=self.config.labels)
        fake = pairwise_ms_ssim(samples[:, :images])
        self.metrics["diversity_history"].append({"step": self.step, "resolution": stage_resolution(stage), "ms_ssim": fake})
        self.metrics.update(
            steps=self.step,
            resolution_trained=stage_resolution(stage),
            ms_ssim_between_samples=fake,
            ms_ssim_between_training_cases=self.real_diversity.get(stage),
            last_losses={k: round(v, 5) for k, v in losses.items()},
        )
        self._save_model()
        meta = {
            "step": self.step,
            "stage": stage,
            "alpha": alpha,
            "request": self.request.to_json(),
            "config": self.config.to_dict(),
            "channels": list(self.channels),
            "spacing": self.base.spacing,
            "start_stage": self.base.start_stage,
            "base_origin": self.base.origin,
            "metrics": self.metrics,
        }
        save_checkpoint(self.out, self.trainer, meta)

    def _save_model(self) -> None:
        request, data = self.request, self.data
        images = ", ".join(self.config.image_channels) + (" + tumour labels" if self.config.labels else "")
        description = request.description or (
            f"{len(data)} case(s) ({images}) from a {data.layout} folder supplied by the user"
            + (f"; {len(data.skipped)} case(s) skipped as unreadable or inconsistent" if data.skipped else "")
            + f"; started from {self.base.origin}."
        )
        card = ModelCard(
            id=model_id_for(self.out),
            kind="gan",
            architecture=self.config.to_dict(),
            channels=list(self.config.image_channels) + ([LABEL_CHANNEL] if self.config.labels else []),
            shape=[self.config.resolution] * 3,
            spacing=[self.base.spacing] * 3,
            training_data=description,
            licence=request.licence or "Weights derive from the training data: the data owner's terms apply.",
            metrics=dict(self.metrics),
            weights={"source": f"medsynth finetune, {self.step} of {request.steps} steps, batch {request.batch_size}"},
            preprocessing={
                **self.spec.to_dict(),
                "normalisation": {"range": [-1.0, 1.0], "output_dtype": "int16", "channels": data.scale},
                "data": {"layout": data.layout, "cases": len(data), "skipped": len(data.skipped)},
                "training": {
                    "loss": "WGAN-GP (gradient penalty 10, drift 1e-3)",
                    "augmentation": "DiffAugment 3D: brightness, contrast, translation 1/8, cutout 1/2" if self.options.augment else "none",
                    "ema_decay": self.trainer.settings.ema_decay,
                    "schedule": f"{self.schedule.phases} equal phases from {stage_resolution(self.base.start_stage)}^3",
                },
            },
        )
        tensors = {f"generator.{k}": v for k, v in self.trainer.G_ema.state_dict().items()}
        tensors.update({f"discriminator.{k}": v for k, v in self.trainer.D.state_dict().items()})
        save_model_folder(self.out, card, tensors)



def model_id_for(out: Path) -> str:
    """The card id of a model folder: ``pgan3d-<folder name>`` in lower case."""
    name = re.sub(r"[^a-z0-9-]+", "-", out.name.lower()).strip("-") or "model"
    return name if name.startswith("pgan3d") else f"pgan3d-{name}"
