"""Training loop shared by segnet and mr2ct: ``medsynth finetune --model seg|mr2ct|<folder>`` lands here.

Same contract as pgan3d's ``run_finetune``: the output folder is a usable model folder from the first
checkpoint on (EMA weights + card), ``checkpoint/`` resumes exactly (training/checkpoint.py), ``loss.jsonl``
holds one line per ``log_every`` steps, progress dicts match pgan3d's, and ``should_stop()`` ends the run
at a checkpoint without raising.

Each step draws ``batch_size`` random patches (``patch``^3) from the cases on the model grid, half of them
holding a foreground voxel for segnet (tumours are small), at a random place in the patch
(``inputs.corner_holding``), flips left-right at random, and drops MR sequences at random
(``inputs.drop_sequences``) so the model works from any subset of them. When
``--data`` is a tissue pool (``tissuepool``), every batch is painted anew by ``randomise`` instead
(domain randomisation; healthy subjects in every batch) and the card records the ranges.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ...data.preprocess import PreprocessSpec
from ...device import select_device
from ...errors import MedSynthError
from ...modelfile import ModelCard, load_model_folder, save_model_folder, write_atomic
from ...training.checkpoint import CHECKPOINT_DIR, load_checkpoint, read_state, save_checkpoint
from ...training.finetune import apply_resume, check_out
from ...training.loop import run_steps
from ...training.losslog import SAMPLES_DIR, truncate_loss_log
from ...training.mosaic import write_mosaic
from ...training.single import StepBookkeeping, update_ema
from ...weights import model_folder
from .inputs import SEQUENCES, PairedSet, corner_holding, drop_sequences, load_paired_set
from .model import NET_PREFIX, run_network
from .network import ChannelNetConfig, build_unet
from .randomise import RANGES, RandomisedSet, Ranges
from .tissuepool import is_pool, load_pool

if TYPE_CHECKING:
    from ...training.finetune import FinetuneRequest

__all__ = ["Family", "train_family", "CROP_FOV_MM"]

#: Field of view (mm) of the training crop around the head: a whole adult head with its skull.
CROP_FOV_MM = (192.0, 224.0, 192.0)
DEFAULT_SPACING = 2.0
DEFAULT_PATCH = 64
EMA_DECAY = 0.995


@dataclass
class Family:
    """What differs between the channel models."""

    scratch_id: str
    architecture: str
    kind: str
    target: str
    out_channels: int
    loss: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, Any], dict[str, torch.Tensor]]
    keep_probability: float
    t1_only: float
    stages: tuple[str | None, ...] = (None,)
    norm: str = "instance"
    describe: str = ""
    ranges: Ranges = RANGES  # domain randomisation when the data is a tissue pool
    extras: Callable[[ChannelNetConfig, str | None], dict[str, Any]] = field(default=lambda config, stage: {})


class _Trainer:
    """The state training/checkpoint.py saves: networks, optimisers, steps, random generator."""

    def __init__(self, config: ChannelNetConfig, discriminator: torch.nn.Module | None, lr: float, seed: int, device: torch.device):
        torch.manual_seed(seed)
        self.G = build_unet(config).to(device)
        self.G_ema = copy.deepcopy(self.G).requires_grad_(False).eval()  # never trained itself: batch norm uses its running stats
        self.D = (discriminator or torch.nn.Module()).to(device)
        self.opt_g = torch.optim.AdamW(self.G.parameters(), lr=lr, weight_decay=1e-5)
        d_params = list(self.D.parameters()) or [torch.nn.Parameter(torch.zeros(1))]
        self.opt_d = torch.optim.AdamW(d_params, lr=lr, betas=(0.5, 0.999))
        self.steps_done = 0
        self.rng = torch.Generator().manual_seed(seed)

    def modules(self) -> dict[str, torch.nn.Module]:
        """The networks a checkpoint saves, by name (the discriminator is empty without an adversarial stage)."""
        return {"g": self.G, "d": self.D, "g_ema": self.G_ema}

    def optimisers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    def update_ema(self) -> None:
        update_ema(self.G_ema, self.G, self.steps_done, EMA_DECAY, buffers=True)


def _model_id(out: Path, prefix: str) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", out.name.lower()).strip("-") or "model"
    return name if name.startswith(prefix) else f"{prefix}-{name}"


def train_family(family: Family, request: FinetuneRequest, stage: str | None, progress=None, should_stop=None) -> Path:
    """Train or continue a channel model of ``family``; ``stage`` is its ``--stage`` option (None: the plain fit)."""
    state = None
    if check_out(request):
        state = read_state(request.out) or {}
        stage = state["request"].get("stage")
        request = apply_resume(request, state)
    else:
        request.resume = False
    if stage not in family.stages:
        choices = ", ".join(s for s in family.stages if s) or "none"
        raise MedSynthError(f"--stage {stage} is not a {family.scratch_id} stage (choices: {choices}).")
    request.options = {"stage": stage} if stage else {}
    device = select_device(request.device)
    try:
        return _Run(family, request, stage, state, device, progress).loop(should_stop)
    except torch.OutOfMemoryError:
        raise MedSynthError(f"Out of {device.type} memory at --batch-size {request.batch_size}; lower it or --resolution.") from None


class _Run(StepBookkeeping):
    def __init__(self, family: Family, request: FinetuneRequest, stage: str | None, state: dict | None, device: torch.device, progress) -> None:
        self.family, self.request, self.stage, self.device, self.progress = family, request, stage, device, progress
        self.out = Path(request.out)
        base_tensors: dict[str, torch.Tensor] = {}
        if state is not None:
            self.config = ChannelNetConfig.from_dict(state["config"])
            self.spacing, self.origin = float(state["spacing"]), state["base_origin"]
        elif request.model == family.scratch_id:
            width = request.width or 16
            self.config = ChannelNetConfig(
                name=family.architecture,
                out_channels=family.out_channels,
                channels=[width, 2 * width, 4 * width, 8 * width],
                patch=request.resolution or DEFAULT_PATCH,
                norm=family.norm,
            )
            self.spacing, self.origin = request.spacing or DEFAULT_SPACING, f"{family.scratch_id} (random initialisation)"
        else:
            folder = model_folder(request.model)
            if folder is None:
                raise MedSynthError(f"Unknown base model '{request.model}'; use {family.scratch_id} (a new model) or a {family.architecture} model folder.")
            card, base_tensors = load_model_folder(folder)
            if card.architecture.get("name") != family.architecture:
                raise MedSynthError(f"The model {request.model} is a '{card.architecture.get('name')}' model, not {family.architecture}.")
            if request.width is not None:
                raise MedSynthError(f"The base model {request.model} has its width; leave out --width when continuing from it.")
            self.config = ChannelNetConfig.from_dict({**card.architecture, "patch": request.resolution or card.architecture["patch"]})
            self.spacing, self.origin = request.spacing or float(card.spacing[0]), f"{card.id} ({folder})"
        fov = tuple(max(self.config.patch, int(round(mm / self.spacing))) for mm in CROP_FOV_MM)
        self.spec = PreprocessSpec(shape=fov, spacing=(self.spacing,) * 3)  # type: ignore[arg-type]
        self.data = self._load_data()
        discriminator = None
        if stage == "adversarial":
            from monai.networks.nets import PatchDiscriminator

            discriminator = PatchDiscriminator(spatial_dims=3, num_layers_d=3 if self.config.patch >= 48 else 2, channels=16, in_channels=2 * len(SEQUENCES) + 1, out_channels=1)
        lr = 1e-3 if not base_tensors else 3e-4
        self.trainer = _Trainer(self.config, discriminator, lr, request.seed, device)
        self.fmt = torch.channels_last_3d if device.type == "cpu" else torch.contiguous_format
        self.trainer.G.to(memory_format=self.fmt)
        self.metrics: dict[str, Any] = {}
        if state is not None:
            load_checkpoint(self.out, self.trainer)
            self.metrics = state.get("metrics", {})
            truncate_loss_log(self.out, lambda entry: entry["step"] <= self.trainer.steps_done)
        else:
            if base_tensors:
                net = {k[len(NET_PREFIX) :]: v for k, v in base_tensors.items() if k.startswith(NET_PREFIX)}
                self.trainer.G.load_state_dict(net)
                self.trainer.G_ema.load_state_dict(net)
            self.out.mkdir(parents=True, exist_ok=True)
            report = {"layout": self.data.layout, "cases": len(self.data), "sequences": self.data.sequences, "skipped": self.data.skipped}
            (self.out / CHECKPOINT_DIR).mkdir(exist_ok=True)
            write_atomic(self.out / CHECKPOINT_DIR / "data_report.json", (json.dumps(report, indent=1) + "\n").encode())

    def _load_data(self) -> PairedSet | RandomisedSet:
        if is_pool(self.request.data):
            pool = load_pool(self.request.data)
            if abs(pool.spacing - self.spacing) > 1e-6:
                raise MedSynthError(f"The tissue pool {self.request.data} is at {pool.spacing:g} mm; train at that --spacing, not {self.spacing:g}.")
            return RandomisedSet(pool, self.family.target, self.family.ranges)

        def reading(done: int, total: int) -> None:
            self.report({"message": f"reading and checking case {done}/{total}"})

        data = load_paired_set(self.request.data, self.spec, self.family.target, skip_bad=self.request.skip_bad, progress=reading)
        for item in data.skipped:
            self.report({"message": f"skipped: {item['problem']}"})
        return data

    # --- steps ---------------------------------------------------------------------------------
    def batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        rng, p = self.trainer.rng, self.config.patch
        if isinstance(self.data, RandomisedSet):
            x, y = self.data.batch(rng, self.request.batch_size, p)
            return x.to(self.device, memory_format=self.fmt), y.to(self.device)
        n, shape = len(self.data), self.data.targets.shape[1:]
        xs, ys = [], []
        for _ in range(self.request.batch_size):
            i = int(torch.randint(n, (1,), generator=rng))
            target = self.data.targets[i]
            draw = torch.rand(2, generator=rng)
            corner = [int(torch.randint(s - p + 1, (1,), generator=rng)) for s in shape]
            if self.family.target == "seg" and draw[0] < 0.5:
                fg = torch.nonzero(target > 0)
                if len(fg):
                    corner = corner_holding(fg[int(torch.randint(len(fg), (1,), generator=rng))], shape, p, rng)
            box = tuple(slice(c, c + p) for c in corner)
            x, y = self.data.inputs[i][(slice(None), *box)], target[box]
            if draw[1] < 0.5:
                x, y = x.flip(1), y.flip(0)
            xs.append(x)
            ys.append(y)
        x = drop_sequences(torch.stack(xs), rng, self.family.keep_probability, self.family.t1_only)
        return x.to(self.device, memory_format=self.fmt), torch.stack(ys).to(self.device)

    def train_step(self) -> dict[str, float]:
        x, y = self.batch()
        t = self.trainer
        t.G.train()
        losses = self.family.loss(t.G(x), y, x, t)
        t.opt_g.zero_grad(set_to_none=True)
        losses["total"].backward()
        t.opt_g.step()
        t.update_ema()
        t.steps_done += 1
        return {k: round(float(v.detach()), 6) for k, v in losses.items() if k != "total"}

    def stage_name(self) -> str:
        return self.stage or self.family.scratch_id

    def loop(self, should_stop) -> Path:
        run_steps(self, self.request.log_every, self.request.checkpoint_every, should_stop)
        return self.out

    # --- checkpoints -----------------------------------------------------------------------------
    def checkpoint(self, losses: dict[str, float]) -> None:
        step = self.trainer.steps_done
        self.metrics.update(steps=step, last_losses=losses)
        self._mosaic(step)
        self._save_model()
        meta = {
            "step": step,
            "request": self.request.to_json(),
            "config": self.config.to_dict(),
            "spacing": self.spacing,
            "base_origin": self.origin,
            "metrics": self.metrics,
        }
        save_checkpoint(self.out, self.trainer, meta)

    def _mosaic(self, step: int) -> None:
        """First case, all sequences given: T1 and the EMA model's prediction, mid-slices."""
        x = self.data.inputs[:1]
        y = run_network(self.trainer.G_ema, x, self.config.patch, device=self.device, amp=False)[0]
        self.trainer.G_ema.to(memory_format=torch.contiguous_format)
        t1 = (x[0, 0].clamp(-2.5, 2.5) / 2.5).numpy()[None]
        if self.family.target == "seg":
            sample = np.concatenate([t1, torch.softmax(y, 0).numpy()])
            write_mosaic(self.out / SAMPLES_DIR / f"mosaic_step{step}.png", sample[None], 1, labels=True)
        else:
            ct = np.clip((y[0].numpy() * 1000.0 + 100.0) / 800.0, -1.0, 1.0)[None]  # window -700..900 HU
            write_mosaic(self.out / SAMPLES_DIR / f"mosaic_step{step}.png", np.concatenate([t1, ct])[None], 2, labels=False)

    def _save_model(self) -> None:
        request, data, family = self.request, self.data, self.family
        given = ", ".join(f"{c} in {n}" for c, n in data.sequences.items() if n)
        dropout = {"keep_probability": family.keep_probability, "t1_only_share": family.t1_only}
        if isinstance(data, RandomisedSet):
            dropout = {"keep_probability": data.ranges.keep_probability, "t1_only_share": data.ranges.t1_only_share}
        description = request.description or (
            f"{len(data)} case(s) from a {data.layout} folder supplied by the user (MR sequences: {given}; target {family.target})"
            + (f"; {len(data.skipped)} case(s) skipped as unreadable or inconsistent" if data.skipped else "")
            + f"; started from {self.origin}."
        )
        card = ModelCard(
            id=_model_id(self.out, family.scratch_id),
            kind=family.kind,
            architecture=self.config.to_dict(),
            channels=[family.target],
            shape=[self.config.patch] * 3,
            spacing=[self.spacing] * 3,
            training_data=description,
            licence=request.licence or "Weights derive from the training data: the data owner's terms apply.",
            metrics=dict(self.metrics),
            weights={"source": f"medsynth finetune, {self.trainer.steps_done} of {request.steps} steps, batch {request.batch_size}"},
            preprocessing={
                **self.spec.to_dict(),
                "inputs": "t1, t1ce, t2, flair: each clipped to its 0.5-99.5 percentiles inside the head, then z-scored there; "
                "missing sequences are zeros with a zero presence map (8 input channels)",
                "training": {
                    "description": family.describe,
                    "sequence_dropout": dropout,
                    "ema_decay": f"{EMA_DECAY} (warm-up: (1 + step) / (10 + step) while smaller)",
                    **family.extras(self.config, self.stage),
                    **({"domain_randomisation": data.ranges.to_dict()} if isinstance(data, RandomisedSet) else {}),
                },
                "inference": "resample to the model spacing, sliding window (patch, 25% overlap, Gaussian), resample back linearly",
            },
        )
        tensors = {f"{NET_PREFIX}{k}": v for k, v in self.trainer.G_ema.state_dict().items()}
        save_model_folder(self.out, card, tensors)

