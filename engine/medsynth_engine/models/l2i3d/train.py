"""``medsynth finetune --model l2i3d`` (new model), ``--model l2i3d-phantom`` or an l2i3d folder (continue).

Training data: cases with T1 (and whichever of T1ce, T2, FLAIR the model renders) and a tumour label map, in any
layout ``finetune`` reads. Each case is brought onto the model grid, its class map is derived once (``labels``:
tissue classes from its T1, tumour classes from its labels), and every step fits the renderer to random crops:
Gaussian negative log-likelihood of the real intensities under the predicted mean and standard deviation, over
the brain's voxels (outside it the image is background by construction), with two crops in three centred on
the tumour and random left-right flips. The model folder holds the EMA weights from the first checkpoint on;
``checkpoint/`` resumes exactly.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from MedSynthLib.conventions import LABEL_CHANNEL

from ...data.preprocess import NEW_MODEL_FOV_MM, PreprocessSpec
from ...data.training_set import TrainingSet, load_training_set
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
from .calibrate import calibrate_temperatures
from .labels import BACKGROUND, label_map, one_hot
from .network import L2IConfig, build_renderer, noise_scales, split_output
from .plugin import NET_PREFIX, predict, render_classes
from .style import GRID as STYLE_GRID
from .style import fit_style, residual_vector

__all__ = ["train", "SCRATCH_ID"]

SCRATCH_ID = "l2i3d"
DEFAULT_RESOLUTION = 64
EMA_DECAY = 0.995
LEARNING_RATE = 1e-3
_TUMOUR_SHARE = 2 / 3
_CALIBRATION_CASES = 4
_STYLE_CASES = 64  # training cases whose residual fields make the style model (models/l2i3d/style.py)
_IMAGE_CHANNELS = ("t1", "t1ce", "t2", "flair")


class _Trainer:
    """What a checkpoint saves: the renderer, its EMA, the optimiser, the step and the random generator."""

    def __init__(self, config: L2IConfig, lr: float, seed: int, device: torch.device) -> None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = build_renderer(config).to(device)
        self.ema = copy.deepcopy(self.net).requires_grad_(False).eval()
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=lr, weight_decay=1e-5)
        self.steps_done = 0
        self.rng = torch.Generator().manual_seed(seed)

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"net": self.net, "ema": self.ema}

    def optimisers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": self.opt}

    def update_ema(self) -> None:
        update_ema(self.ema, self.net, self.steps_done, EMA_DECAY, buffers=True)


def gaussian_nll(output: torch.Tensor, target: torch.Tensor, brain: torch.Tensor) -> torch.Tensor:
    """Mean over brain voxels and sequences of -log N(target; mean, sigma), without the constant."""
    mean, log_sigma = split_output(output)
    nll = 0.5 * ((target - mean) * torch.exp(-log_sigma)) ** 2 + log_sigma
    weight = brain[:, None].to(nll.dtype).expand_as(nll)
    return (nll * weight).sum() / weight.sum().clamp_min(1.0)


def _model_id(out: Path) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", out.name.lower()).strip("-") or "model"
    return name if name.startswith(SCRATCH_ID) else f"{SCRATCH_ID}-{name}"


class L2IRun(StepBookkeeping):
    def __init__(self, request: Any, state: dict | None, progress: Callable[[dict], None] | None) -> None:
        self.request, self.progress = request, progress
        self.out = Path(request.out)
        self.device = select_device(request.device)
        base_tensors: dict[str, torch.Tensor] = {}
        if state is not None:
            self.config = L2IConfig.from_dict(state["config"])
            self.spacing, self.origin = float(state["spacing"]), state["base_origin"]
        elif request.model == SCRATCH_ID:
            res = request.resolution or DEFAULT_RESOLUTION
            w = request.width or 16
            channels = [c for c in (request.channels or _IMAGE_CHANNELS) if c != LABEL_CHANNEL]
            self.config = L2IConfig(channels=channels, widths=[w, 2 * w, 4 * w, 8 * w], resolution=res, patch=max(8, min(32, res // 2)))
            self.spacing, self.origin = request.spacing or NEW_MODEL_FOV_MM / res, "l2i3d (random initialisation)"
        else:
            folder = model_folder(request.model)
            if folder is None:
                raise MedSynthError(f"Unknown base model '{request.model}'; use l2i3d (a new model), l2i3d-phantom or an l2i3d model folder.")
            card, base_tensors = load_model_folder(folder)
            if card.architecture.get("name") != "l2i3d":
                raise MedSynthError(f"The model {request.model} is a '{card.architecture.get('name')}' model, not l2i3d.")
            for flag, value in (("--width", request.width), ("--resolution", request.resolution), ("--spacing", request.spacing)):
                if value is not None:
                    raise MedSynthError(f"The base model {request.model} has its grid and width; leave out {flag} when continuing from it.")
            self.config = L2IConfig.from_dict(card.architecture)
            self.spacing, self.origin = float(card.spacing[0]), f"{card.id} ({folder})"
        if "t1" not in self.config.channels:
            raise MedSynthError("l2i3d derives its tissue classes from the T1; the channels must include t1.")
        self.spec = PreprocessSpec(shape=(self.config.resolution,) * 3, spacing=(self.spacing,) * 3)
        self.data = self._load_data()
        self.classes = torch.from_numpy(np.stack([self._classes(i) for i in range(len(self.data))]))
        lr = LEARNING_RATE if not base_tensors else LEARNING_RATE / 3
        self.trainer = _Trainer(self.config, lr, request.seed, self.device)
        self.metrics: dict[str, Any] = {}
        if state is not None:
            load_checkpoint(self.out, self.trainer)
            self.metrics = state.get("metrics", {})
            truncate_loss_log(self.out, lambda entry: entry["step"] <= self.trainer.steps_done)
        else:
            if base_tensors:
                net = {k[len(NET_PREFIX) :]: v.float() for k, v in base_tensors.items() if k.startswith(NET_PREFIX)}
                self.trainer.net.load_state_dict(net)
                self.trainer.ema.load_state_dict(net)
            self.out.mkdir(parents=True, exist_ok=True)
            report = {"layout": self.data.layout, "cases": len(self.data), "skipped": self.data.skipped}
            (self.out / CHECKPOINT_DIR).mkdir(exist_ok=True)
            write_atomic(self.out / CHECKPOINT_DIR / "data_report.json", (json.dumps(report, indent=1) + "\n").encode())

    def _load_data(self) -> TrainingSet:
        def reading(done: int, total: int) -> None:
            self.report({"message": f"reading and checking case {done}/{total}"})

        channels = (*self.config.channels, LABEL_CHANNEL)
        data = load_training_set(Path(self.request.data), self.spec, channels=channels, skip_bad=self.request.skip_bad, progress=reading)
        if len(data) < 2:
            raise MedSynthError(f"Training needs at least 2 usable cases; {self.request.data} has {len(data)}.")
        return data

    def _classes(self, i: int) -> np.ndarray:
        t1 = self.data.images[i, self.config.channels.index("t1")].numpy()
        seg = self.data.labels[i].numpy() if self.data.labels is not None else None
        return label_map(t1, t1 > BACKGROUND + 1e-3, seg)

    # --- the loop's parts --------------------------------------------------------------------------
    def _crop(self, i: int, rng: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        p, classes = self.config.patch, self.classes[i]
        shape = classes.shape
        corner = [int(torch.randint(s - p + 1, (1,), generator=rng)) for s in shape]
        if bool(torch.rand((), generator=rng) < _TUMOUR_SHARE):
            tumour = torch.nonzero(classes >= 4)
            if len(tumour):
                centre = tumour[int(torch.randint(len(tumour), (1,), generator=rng))]
                corner = [min(max(int(c) - p // 2, 0), s - p) for c, s in zip(centre, shape, strict=True)]
        box = tuple(slice(c, c + p) for c in corner)
        x, y = self.data.images[i][(slice(None), *box)], classes[box]
        if bool(torch.rand((), generator=rng) < 0.5):  # axis 0 is left-right (RAS)
            x, y = x.flip(1), y.flip(0)
        return x, y

    def train_step(self) -> dict[str, float]:
        t, rng = self.trainer, self.trainer.rng
        crops = [self._crop(int(torch.randint(len(self.data), (1,), generator=rng)), rng) for _ in range(self.request.batch_size)]
        images = torch.stack([c[0] for c in crops]).to(self.device)
        classes = torch.stack([c[1] for c in crops])
        hot = torch.from_numpy(np.stack([one_hot(c.numpy()) for c in classes])).to(self.device)
        t.net.train()
        amp = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bool(self.request.amp))
        with amp:
            output = t.net(hot)
        loss = gaussian_nll(output.float(), images, (classes > 0).to(self.device))
        t.opt.zero_grad(set_to_none=True)
        loss.backward()
        t.opt.step()
        t.update_ema()
        t.steps_done += 1
        with torch.no_grad():
            mean, _ = split_output(output.float())
            brain = (classes > 0).to(self.device)[:, None].expand_as(mean)
            l1 = (mean - images).abs()[brain].mean()
        return {"nll": round(float(loss.detach()), 6), "l1_mean": round(float(l1), 6)}

    def stage_name(self) -> str:
        return SCRATCH_ID

    def checkpoint(self, losses: dict[str, float]) -> None:
        self.metrics.update(steps=self.step, last_losses=losses)
        k = min(_CALIBRATION_CASES, len(self.data))
        self.config.temperatures = calibrate_temperatures(
            self.trainer.ema, [self.data.images[i].numpy() for i in range(k)], [self.classes[i].numpy() for i in range(k)], self.device
        )
        self.style = self._fit_style()
        self._mosaic()
        self._save_model()
        meta = {"step": self.step, "request": self.request.to_json(), "config": self.config.to_dict(), "spacing": self.spacing,
                "base_origin": self.origin, "metrics": self.metrics}
        save_checkpoint(self.out, self.trainer, meta)

    def _fit_style(self) -> dict[str, torch.Tensor]:
        """The per-case style model from the EMA renderer's residuals on up to ``_STYLE_CASES`` training cases."""
        fields = []
        for i in range(min(_STYLE_CASES, len(self.data))):
            classes = self.classes[i].numpy()
            mean, _ = predict(self.trainer.ema, classes, self.device)
            fields.append(residual_vector(self.data.images[i].numpy(), mean, classes))
        return fit_style(np.stack(fields))

    def _mosaic(self) -> None:
        """Row 1: the first training case; row 2: the EMA renderer's sample of the same label map."""
        classes = self.classes[0].numpy()
        rendered = render_classes(self.trainer.ema, classes, 0, noise_scales(self.config), self.device)
        codes = np.zeros((4, *classes.shape), dtype=np.float32)
        for j, k in enumerate((0, 4, 5, 6)):
            codes[j] = classes == k
        codes[0] = 1.0 - codes[1:].sum(0)
        rows = np.stack([np.concatenate([self.data.images[0].numpy(), codes]), np.concatenate([rendered, codes])])
        write_mosaic(self.out / SAMPLES_DIR / f"mosaic_step{self.step}.png", rows, len(self.config.channels), labels=True)

    def _save_model(self) -> None:
        request, data = self.request, self.data
        description = request.description or (
            f"{len(data)} case(s) ({', '.join(self.config.channels)} + tumour labels) from a {data.layout} folder supplied by the user; "
            f"started from {self.origin}."
        )
        card = ModelCard(
            id=_model_id(self.out),
            kind="translation",
            architecture=self.config.to_dict(),
            channels=[*self.config.channels, LABEL_CHANNEL],
            shape=[self.config.resolution] * 3,
            spacing=[self.spacing] * 3,
            training_data=description,
            licence=request.licence or "Weights derive from the training data: the data owner's terms apply.",
            metrics=dict(self.metrics),
            weights={"source": f"medsynth finetune --model l2i3d, {self.step} of {request.steps} steps, batch {request.batch_size}"},
            preprocessing={
                **self.spec.to_dict(),
                "normalisation": {"range": [-1.0, 1.0], "output_dtype": "int16", "channels": data.scale},
                "data": {"layout": data.layout, "cases": len(data), "skipped": len(data.skipped)},
                "labels": "tissue classes (CSF, grey, white matter) by 3-class k-means of the smoothed T1 inside the brain and outside "
                "the tumour; tumour classes from the case's labels (models/l2i3d/labels.py); at generation: the phantom's anatomy and "
                "tumour model, labelled the same way",
                "training": {
                    "loss": "Gaussian negative log-likelihood per voxel and sequence over the brain (mean and log sigma predicted)",
                    "optimiser": f"AdamW lr {LEARNING_RATE:g} (a third of it when continuing a model), weight decay 1e-5",
                    "crops": f"{self.config.patch}^3, two in three centred on tumour, random left-right flip",
                    "ema_decay": f"{EMA_DECAY} (warm-up: (1 + step) / (10 + step) while smaller)",
                    "noise_calibration": "per-sequence temperature matching the fine-detail energy of the first "
                    f"{_CALIBRATION_CASES} training cases (models/l2i3d/calibrate.py); architecture.temperatures",
                    "style": f"per-case style: a Gaussian in all {len(self.style['style.scale'])} principal components of the "
                    "training cases' style vectors (log residual of the image against the renderer's mean per tissue class and over "
                    f"{STYLE_GRID}^3 brain-weighted cells, log fine-detail level) of the first {min(_STYLE_CASES, len(data))} training "
                    "cases, drawn from each case's seed (models/l2i3d/style.py)",
                },
            },
        )
        tensors = {f"{NET_PREFIX}{k}": v for k, v in self.trainer.ema.state_dict().items()} | self.style
        save_model_folder(self.out, card, tensors)


def train(request: Any, options: Any = None, progress: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None) -> Path:
    """Train or continue an l2i3d renderer; the contract of training.finetune.run_finetune."""
    if request.nproc != 1:
        raise MedSynthError("l2i3d trains in one process; leave out --nproc.")
    state = None
    if check_out(request):
        state = read_state(request.out) or {}
        request = apply_resume(request, state)
    else:
        request.resume = False
    try:
        run = L2IRun(request, state, progress)
        run_steps(run, request.log_every, request.checkpoint_every, should_stop)
    except torch.OutOfMemoryError:
        raise MedSynthError(f"Out of memory at --batch-size {request.batch_size}; lower it or add --amp.") from None
    return Path(request.out)
