"""``medsynth finetune --model ldm3d``: the two training stages of the latent diffusion model.

Stage ``autoencoder`` trains MONAI's AutoencoderKL on the volumes (images + soft one-hot labels) with an L1
reconstruction loss and a small KL term (no PerceptualLoss: MONAI's needs downloaded weights; no adversarial
loss: it doubles the CPU cost). Stage ``diffusion`` freezes it, encodes the training set once and trains
MONAI's DiffusionModelUNet (v-prediction, DDPM noise schedule) on the scaled latents, with the label map as a
concatenated condition that is dropped for a share of the batches (see ``network``).

Without ``--stage`` a run does the next stage due: a new folder starts with the autoencoder; ``--resume``
continues an unfinished stage exactly (same steps, batches, noise) or, once it is finished, starts the next.
The output folder is a usable model folder from the first checkpoint on (after the autoencoder stage it can
only reconstruct; ``generate`` asks for the diffusion stage). Checkpoints, loss log and mosaics are the
pgan3d framework's own (``training.checkpoint``, ``training.run``, ``training.mosaic``).
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from MedSynthLib.conventions import LABEL_CHANNEL

from ...data.layouts import find_cases
from ...data.preprocess import NEW_MODEL_FOV_MM, PreprocessSpec
from ...data.training_set import TrainingSet, choose_channels, load_training_set
from ...device import select_device
from ...errors import MedSynthError
from ...modelfile import ModelCard, load_model_folder, save_model_folder
from ...training.checkpoint import load_checkpoint, read_state, save_checkpoint
from ...training.finetune import check_out, resume_steps
from ...training.loop import run_steps
from ...training.losslog import SAMPLES_DIR, append_loss, truncate_loss_log
from ...training.mosaic import write_mosaic
from ...training.request import DEFAULT_STEPS
from ...weights import model_folder
from .network import (
    LDMConfig,
    autoencoder_widths,
    build_autoencoder,
    build_unet,
    condition_from_codes,
    training_scheduler,
    unconditional,
)
from .options import STAGES, LDMOptions

__all__ = ["train", "SCRATCH_ID", "autoencoder_lr"]

SCRATCH_ID = "ldm3d"
DEFAULT_RESOLUTION = 48
DEFAULT_WIDTH = 16
EMA_DECAY = 0.995
AE_LR, AE_LR_FINAL = 1e-3, 1e-5
MOSAIC_SAMPLES = 4
SAMPLE_SEED = 20260101


def autoencoder_lr(step: int, total: int) -> float:
    """Adam's learning rate for autoencoder step ``step`` (0-based) of ``total``: cosine from 1e-3 down to 1e-5.

    At a constant 1e-3 (batch 2) the reconstructions drifted by 0.2-0.3 of the intensity range from one step to
    the next, a whole-head bias that hid the tumour contrast; the decay lets the last steps settle. A function
    of the step alone, so a resumed stage follows the same schedule.
    """
    progress = min(max(step / max(total, 1), 0.0), 1.0)
    return AE_LR_FINAL + (AE_LR - AE_LR_FINAL) * 0.5 * (1.0 + math.cos(math.pi * progress))


class _StageState:
    """What one stage's checkpoint holds: the network it trains (and its moving average in the diffusion
    stage), its optimiser, the step count and the generator that draws every random number of the run."""

    def __init__(self, trained: torch.nn.Module, lr: float, seed: int, ema: torch.nn.Module | None = None) -> None:
        self.trained, self.ema = trained, ema
        self.opt = torch.optim.Adam([p for p in trained.parameters() if p.requires_grad], lr=lr)
        self.steps_done = 0
        self.rng = torch.Generator().manual_seed(int(seed))

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"net": self.trained, **({"ema": self.ema} if self.ema is not None else {})}

    def optimisers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": self.opt}


def model_id_for(out: Path) -> str:
    name = re.sub(r"[^a-z0-9-]+", "-", Path(out).name.lower()).strip("-") or "model"
    return name if name.startswith("ldm3d") else f"ldm3d-{name}"


def _base(model: str) -> tuple[LDMConfig | None, dict[str, torch.Tensor], ModelCard | None]:
    """Config and weights to start from: none for ``ldm3d``, else a trained ldm3d folder or shipped id."""
    if model == SCRATCH_ID:
        return None, {}, None
    folder = model_folder(model)
    if folder is None:
        raise MedSynthError(f"Unknown base model '{model}'; use ldm3d (a new model), ldm3d-phantom or an ldm3d model folder.")
    card, tensors = load_model_folder(folder)
    if card.architecture.get("name") != "ldm3d":
        raise MedSynthError(f"The model folder {folder} is a '{card.architecture.get('name')}' model, not ldm3d.")
    return LDMConfig.from_dict(card.architecture), tensors, card


class LDMRun:
    """One stage of one run: data, networks, the step, logs, checkpoints and the model folder."""

    def __init__(self, request: Any, options: LDMOptions, stage: str, state: dict | None, progress: Callable[[dict], None] | None) -> None:
        self.request, self.stage, self.progress = request, stage, progress
        self.out = Path(request.out)
        self.device = select_device(request.device)
        continuing = state is not None and state.get("stage_name") == stage
        base_config, base_tensors, base_card = _base(request.model) if state is None else (None, {}, None)
        if state is not None:
            self.config = LDMConfig.from_dict(state["config"])
            self.spacing = float(state["spacing"])
            self.origin = state["base_origin"]
            self.stages_done = list(state.get("stages_done", []))
        elif base_config is not None:
            self.config = base_config
            self.spacing = float(base_card.spacing[0])
            self.origin = f"{base_card.id} ({request.model})"
            self.stages_done = list(base_card.architecture.get("stages_trained", STAGES))
        else:
            res = request.resolution or DEFAULT_RESOLUTION
            w = request.width or DEFAULT_WIDTH
            factor = options.latent_downsample or (4 if res >= 32 else 2)  # latents 1/4 of the side (1/2 below 32^3)
            self.config = LDMConfig(resolution=res, ae_channels=autoencoder_widths(w, factor), unet_channels=[2 * w, 4 * w, 4 * w])
            channels = request.channels or choose_channels(find_cases(Path(request.data), None)[1], None)
            self.config.image_channels = [c for c in channels if c != LABEL_CHANNEL]
            self.config.labels = LABEL_CHANNEL in channels
            self.spacing = request.spacing or NEW_MODEL_FOV_MM / res
            self.origin = "ldm3d (random initialisation)"
            self.stages_done = []
        if base_config is not None and options.latent_downsample not in (None, self.config.downsample):
            raise MedSynthError(f"The base model {request.model} has its latent grid fixed; leave out --latent-downsample.")
        if base_config is not None and request.channels is not None and list(request.channels) != self.config.channels:
            raise MedSynthError(f"The base model {request.model} makes {', '.join(self.config.channels)}; leave out --channels.")
        if not self.config.image_channels:
            raise MedSynthError("ldm3d needs at least one image channel (t1, t1ce, t2 or flair).")
        if self.config.resolution % self.config.downsample:
            raise MedSynthError(f"--resolution must be a multiple of {self.config.downsample} for ldm3d.")
        self.spec = PreprocessSpec(shape=(self.config.resolution,) * 3, spacing=(self.spacing,) * 3)
        self.data = self._load_data()
        with torch.random.fork_rng(devices=[]):  # seeded initial weights, without touching the caller's generator
            torch.manual_seed(request.seed)
            self.autoencoder = build_autoencoder(self.config).to(self.device)
            self.unet = build_unet(self.config).to(self.device)
        if state is not None:  # the folder's own weights: the finished stages of this run
            _, tensors = load_model_folder(self.out)
            self._load(tensors)
        elif base_tensors:
            self._load(base_tensors)
        seed = request.seed + STAGES.index(stage)
        if stage == "autoencoder":
            self.slots = _StageState(self.autoencoder, AE_LR, seed)
        else:
            if "autoencoder" not in self.stages_done:
                raise MedSynthError("Train the autoencoder stage first (medsynth finetune --model ldm3d ... --stage autoencoder).")
            self.autoencoder.requires_grad_(False).eval()
            self.unet_ema = copy.deepcopy(self.unet).requires_grad_(False)
            self.slots = _StageState(self.unet, 2e-4, seed, ema=self.unet_ema)
        if continuing:
            load_checkpoint(self.out, self.slots)
            self._truncate_log()
        else:
            self.out.mkdir(parents=True, exist_ok=True)
        if stage == "diffusion":
            self._encode_training_set(keep_scale=continuing)
        self.step = self.slots.steps_done
        self.total = request.steps

    # --- setup -------------------------------------------------------------------------------
    def _load_data(self) -> TrainingSet:
        def reading(done: int, total: int) -> None:
            self.report({"message": f"reading and checking case {done}/{total}"})

        data = load_training_set(Path(self.request.data), self.spec, channels=tuple(self.config.channels), skip_bad=self.request.skip_bad, progress=reading)
        if len(data) < 2:
            raise MedSynthError(f"Training needs at least 2 usable cases; {self.request.data} has {len(data)}.")
        return data

    def _load(self, tensors: dict[str, torch.Tensor]) -> None:
        for prefix, module in (("autoencoder.", self.autoencoder), ("unet.", self.unet)):
            part = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
            if part:
                try:
                    module.load_state_dict(part)
                except RuntimeError:
                    raise MedSynthError("The base model's weights do not fit the ldm3d architecture its card describes.") from None

    def _inputs(self, index: torch.Tensor) -> torch.Tensor:
        """Autoencoder input: images in [-1, 1] then the one-hot labels scaled to [-1, 1]."""
        batch = self.data.batch(index)
        k = len(self.config.image_channels)
        return torch.cat([batch[:, :k], batch[:, k:] * 2.0 - 1.0], dim=1).to(self.device)

    def _encode_training_set(self, *, keep_scale: bool) -> None:
        """Latent means of every training case, once; fixes the latent scale factor on a new stage.

        The diffusion UNet learns the distribution of the posterior *means*, not of samples mean + sigma * noise:
        with the small KL weight the posterior spread stays near its initial 1 while the means spread by only
        0.25-0.5 (measured on the shipped 48^3 autoencoder), so sampled latents were more than half noise the
        decoder ignores (decoding the mean or a sample changes the image by under 0.01), and the UNet spent its
        capacity on modelling that noise. Inpainting (``plugin.inpaint``) encodes to the mean as well.
        """
        mus = []
        with torch.no_grad():
            for start in range(0, len(self.data), 4):
                index = torch.arange(start, min(start + 4, len(self.data)))
                mus.append(self.autoencoder.encode(self._inputs(index))[0].float())
        self.mu = torch.cat(mus)
        if not keep_scale:
            self.config.scale_factor = float(1.0 / self.mu.std().clamp_min(1e-6))
        codes = self.data.labels if self.data.labels is not None else torch.zeros(len(self.data), *self.spec.shape, dtype=torch.uint8)
        self.conditions = condition_from_codes(codes, self.config.latent_resolution).to(self.device)

    # --- the loop's parts --------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        slots, rng, request = self.slots, self.slots.rng, self.request
        index = torch.randint(0, len(self.data), (request.batch_size,), generator=rng)
        amp = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bool(request.amp))
        if self.stage == "autoencoder":
            for group in slots.opt.param_groups:
                group["lr"] = autoencoder_lr(slots.steps_done, request.planned_steps)
            x, k = self._inputs(index), len(self.config.image_channels)
            if bool(torch.rand((), generator=rng) < 0.5):  # left-right flip: heads are roughly symmetric
                x = x.flip(2)
            with amp:
                mu, sigma = self.autoencoder.encode(x)
                eps = torch.randn(mu.shape, generator=rng).to(self.device)
                recon = self.autoencoder.decode(mu + eps * sigma)
            recon = recon.float()
            # tumours fill ~2% of a head: without extra weight the autoencoder learns to drop them (and their labels)
            tumour = F.max_pool3d((x[:, k + 1 :] > 0).any(dim=1, keepdim=True).float(), 3, stride=1, padding=1) if self.config.labels else 0.0
            weight = 1.0 + self.config.tumour_weight * tumour
            l1 = ((recon - x).abs() * weight).mean() / (weight.mean() if torch.is_tensor(weight) else 1.0)
            kl = 0.5 * (mu.float().pow(2) + sigma.float().pow(2) - torch.log(sigma.float().pow(2) + 1e-8) - 1).sum(dim=(1, 2, 3, 4)).mean()
            loss = l1 + self.config.kl_weight * kl
            losses = {"l1": float(l1.detach()), "kl": float(kl.detach())}
        else:
            scheduler = self._scheduler()
            z = self.mu[index] * self.config.scale_factor  # the means: see _encode_training_set
            noise = torch.randn(z.shape, generator=rng).to(self.device)
            t = torch.randint(0, self.config.train_timesteps, (len(index),), generator=rng).to(self.device)
            cond = self.conditions[index].clone()
            drop = (torch.rand(len(index), generator=rng) < self.config.condition_dropout).to(self.device)
            cond[drop] = unconditional(int(drop.sum()), self.config.latent_resolution, self.device)
            noisy = scheduler.add_noise(z, noise, t)
            target = scheduler.get_velocity(z, noise, t) if self.config.prediction_type == "v_prediction" else noise
            with amp:
                prediction = self.unet(torch.cat([noisy, cond], dim=1), timesteps=t)
            loss = F.mse_loss(prediction.float(), target)
            losses = {"mse": float(loss.detach())}
        slots.opt.zero_grad(set_to_none=True)
        loss.backward()
        slots.opt.step()
        if self.stage == "diffusion":
            with torch.no_grad():
                for ema, live in zip(self.unet_ema.parameters(), self.unet.parameters(), strict=True):
                    ema.lerp_(live, 1.0 - EMA_DECAY)
        slots.steps_done += 1
        self.step = slots.steps_done
        return losses

    def _scheduler(self):
        if not hasattr(self, "_ddpm"):
            self._ddpm = training_scheduler(self.config)
        return self._ddpm

    def report(self, extra: dict[str, Any]) -> None:
        if self.progress:
            self.progress({"step": getattr(self, "step", 0), "total": self.request.steps, "stage": self.stage, **extra})

    def step_text(self) -> str:
        return f"{self.stage} step {self.step}/{self.total}"

    def stop_text(self) -> str:
        return f"{self.stage} step {self.step}"

    def log(self, losses: dict[str, float]) -> None:
        append_loss(self.out, {"step": self.step, "stage": self.stage, **losses})

    def _truncate_log(self) -> None:
        truncate_loss_log(self.out, lambda entry: entry.get("stage") != self.stage or entry["step"] <= self.slots.steps_done)

    def checkpoint(self, losses: dict[str, float]) -> None:
        done = list(self.stages_done)
        if self.stage not in done:
            done.append(self.stage)
        self.config_dict = {**self.config.to_dict(), "stages_trained": [s for s in STAGES if s in done]}
        samples = self._samples()
        write_mosaic(self.out / SAMPLES_DIR / f"mosaic_{self.stage}_step{self.step}.png", samples, len(self.config.image_channels), labels=self.config.labels)
        self._save_model(losses)
        meta = {
            "step": self.step,
            "stage_name": self.stage,
            "stage_steps": self.request.steps,
            "stages_done": [s for s in STAGES if s in done],
            "request": self.request.to_json(),
            "config": self.config.to_dict(),
            "spacing": self.spacing,
            "base_origin": self.origin,
        }
        save_checkpoint(self.out, self.slots, meta)

    def _samples(self) -> Any:
        """Mosaic rows: reconstructions of training cases (autoencoder) or seeded samples (diffusion)."""
        n = min(MOSAIC_SAMPLES, len(self.data))
        with torch.no_grad():
            if self.stage == "autoencoder":
                self.autoencoder.eval()
                x = self._inputs(torch.arange(n))
                out = self.autoencoder.reconstruct(x)
                self.autoencoder.train()
            else:
                from .plugin import sample_volumes

                cond = self.conditions[:n].clone()
                cond[: n // 2] = unconditional(n // 2, self.config.latent_resolution, self.device)
                out = sample_volumes(self.config, self.autoencoder, self.unet_ema, cond, SAMPLE_SEED, self.config.default_steps, self.device)
        k = len(self.config.image_channels)
        out = out.float().cpu()
        return torch.cat([out[:, :k], (out[:, k:] + 1.0) / 2.0], dim=1).numpy()

    def _save_model(self, losses: dict[str, float]) -> None:
        request, data = self.request, self.data
        trained = self.config_dict["stages_trained"]
        images = ", ".join(self.config.image_channels) + (" + tumour labels" if self.config.labels else "")
        description = request.description or (
            f"{len(data)} case(s) ({images}) from a {data.layout} folder supplied by the user; started from {self.origin}."
        )
        card = ModelCard(
            id=model_id_for(self.out),
            kind="diffusion",
            architecture=self.config_dict,
            channels=self.config.channels,
            shape=[self.config.resolution] * 3,
            spacing=[self.spacing] * 3,
            training_data=description,
            licence=request.licence or "Weights derive from the training data: the data owner's terms apply.",
            metrics={"stage": self.stage, "steps": self.step, "last_losses": {k: round(v, 5) for k, v in losses.items()}},
            weights={"source": f"medsynth finetune --model ldm3d, stages trained: {', '.join(trained)}; {self.stage} {self.step} of {request.steps} steps, batch {request.batch_size}"},
            preprocessing={
                **self.spec.to_dict(),
                "normalisation": {"range": [-1.0, 1.0], "output_dtype": "int16", "channels": data.scale},
                "data": {"layout": data.layout, "cases": len(data), "skipped": len(data.skipped)},
                "training": {
                    "autoencoder_loss": (
                        f"L1 (tumour voxels x{1 + self.config.tumour_weight:g}) + {self.config.kl_weight:g} x KL, "
                        f"Adam lr {AE_LR:g} cosine to {AE_LR_FINAL:g} over the stage "
                        "(no perceptual loss: MONAI's needs downloaded weights; no adversarial loss)"
                    ),
                    "diffusion": f"DDPM {self.config.train_timesteps} steps on the latent means, {self.config.prediction_type}, EMA {EMA_DECAY}",
                    "conditioning": f"label map concatenated on the latent grid, dropped with p={self.config.condition_dropout}",
                },
            },
        )
        tensors = {f"autoencoder.{k}": v for k, v in self.autoencoder.state_dict().items()}
        unet = self.unet_ema if self.stage == "diffusion" else self.unet
        if "diffusion" in trained:
            tensors.update({f"unet.{k}": v for k, v in unet.state_dict().items()})
        save_model_folder(self.out, card, tensors)


def _plan(request: Any, options: LDMOptions) -> tuple[str, dict | None]:
    """Which stage this run trains, and the checkpoint state it continues from (None for a new folder)."""
    if request.nproc != 1:
        raise MedSynthError("ldm3d trains in one process; leave out --nproc.")
    state = read_state(request.out) if check_out(request) else None
    if state is None:
        stage = options.stage or "autoencoder"
        if stage == "diffusion" and request.model == SCRATCH_ID:
            raise MedSynthError("A new ldm3d model trains its autoencoder first; leave out --stage or use --stage autoencoder.")
        return stage, None
    current = state["stage_name"]
    finished = int(state["step"]) >= int(state["stage_steps"])
    stage = options.stage or (current if not finished else STAGES[min(STAGES.index(current) + 1, len(STAGES) - 1)])
    if STAGES.index(stage) < STAGES.index(current):
        raise MedSynthError(f"{request.out} has moved on to the {current} stage; retraining the {stage} would invalidate it.")
    if stage == current:  # continue exactly (the stage's settings come from its checkpoint), or extend it by --steps
        saved = state["request"]
        request.steps, request.schedule_steps = resume_steps(request, state)
        for key in ("batch_size", "seed", "data", "amp"):
            if key in saved:
                setattr(request, key, Path(saved[key]) if key == "data" else saved[key])
    else:  # the next stage starts: its own step count
        request.steps, request.schedule_steps = request.steps or DEFAULT_STEPS, None
    return stage, state


def train(
    request: Any, options: LDMOptions, progress: Callable[[dict], None] | None = None, should_stop: Callable[[], bool] | None = None
) -> Path:
    """Train one ldm3d stage until ``request.steps`` or ``should_stop()``; returns the model folder."""
    stage, state = _plan(request, options)
    try:
        run = LDMRun(request, options, stage, state, progress)
        run_steps(run, request.log_every, request.checkpoint_every, should_stop)
    except torch.OutOfMemoryError:
        raise MedSynthError(f"Out of memory at --batch-size {request.batch_size}; lower it or add --amp.") from None
    return Path(request.out)
