"""One WGAN-GP training step for pgan3d, identical on one process or split over several.

Every random draw (cases, latents, gradient-penalty mixing, augmentation) is made for the *global* batch
from one CPU generator seeded by the run; each process then takes its slice. Gradients are averaged over
processes with one all-reduce, so K processes on B/K samples compute what one process computes on B.
"""

from __future__ import annotations

import copy
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ...data.training_set import TrainingSet
from .augment import apply_augment, draw_augment, slice_params
from .network import Discriminator, Generator, PGANConfig, downsample, upsample

__all__ = ["TrainSettings", "GANTrainer"]


@dataclass
class TrainSettings:
    """Optimisation settings (Karras et al.'s defaults: Adam lr 1e-3, betas 0/0.99, GP weight 10, drift 1e-3)."""

    batch_size: int = 4
    lr: float = 1e-3
    beta1: float = 0.0
    beta2: float = 0.99
    gp_weight: float = 10.0
    drift: float = 1e-3
    ema_decay: float = 0.999
    augment: bool = True
    amp: bool = False
    channels_last: bool = False
    grad_checkpoint: bool = False
    freeze_stages: int = 0
    label_smoothing: float = 0.1


class GANTrainer:
    """Generator, critic, EMA generator, their optimisers and the run's random generator."""

    def __init__(
        self,
        config: PGANConfig,
        data: TrainingSet | None,
        settings: TrainSettings,
        device: torch.device,
        seed: int,
        *,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        if settings.batch_size % world:
            raise ValueError("batch size must be a multiple of the number of processes")
        self.config, self.data, self.settings, self.device = config, data, settings, device
        self.rank, self.world = rank, world
        self.local = slice(rank * settings.batch_size // world, (rank + 1) * settings.batch_size // world)
        torch.manual_seed(seed)
        self.G = Generator(config).to(device)
        self.D = Discriminator(config).to(device)
        self.G.grad_checkpoint = settings.grad_checkpoint
        if settings.channels_last:
            self.G.to(memory_format=torch.channels_last_3d)
            self.D.to(memory_format=torch.channels_last_3d)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.freeze(settings.freeze_stages)
        betas = (settings.beta1, settings.beta2)
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=settings.lr, betas=betas, eps=1e-8)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=settings.lr, betas=betas, eps=1e-8)
        self.rng = torch.Generator().manual_seed(seed + 1)
        self.steps_done = 0

    def modules(self) -> dict[str, torch.nn.Module]:
        """The networks a checkpoint saves, by name."""
        return {"g": self.G, "d": self.D, "g_ema": self.G_ema}

    def optimisers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    def freeze(self, stages: int) -> None:
        """Keep the generator's first ``stages`` blocks (coarse anatomy) fixed when transferring."""
        for s in range(min(stages, self.config.stages)):
            self.G.blocks[s].requires_grad_(False)
            self.G.to_out[s].requires_grad_(False)

    def _autocast(self):
        if not self.settings.amp:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, non_blocking=True)
        return x.contiguous(memory_format=torch.channels_last_3d) if self.settings.channels_last else x

    def reals(self, index: torch.Tensor, stage: int, alpha: float) -> torch.Tensor:
        """Training volumes at the stage's resolution, blended like the generator during a fade-in."""
        assert self.data is not None
        x = self.data.batch(index).to(self.device)
        x = downsample(x, self.config.resolution // (4 * 2**stage))
        if self.config.labels and self.settings.label_smoothing:
            # exact one-hot labels would let the critic tell real from softmax output at a glance
            k, eps = len(self.config.image_channels), self.settings.label_smoothing
            x = torch.cat([x[:, :k], x[:, k:] * (1.0 - eps) + eps / (x.shape[1] - k)], dim=1)
        if alpha < 1.0 and stage > 0:
            x = alpha * x + (1.0 - alpha) * upsample(downsample(x))
        return x

    def _d_input(self, x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.settings.augment:
            x = apply_augment(x, params, len(self.config.image_channels))
        return self._prepare(x)

    def _allreduce(self, module: torch.nn.Module) -> None:
        if self.world == 1:
            return
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.flatten() for g in grads])
        dist.all_reduce(flat)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def step(self, stage: int, alpha: float) -> dict[str, float]:
        """One critic update and one generator update; returns the global-batch-mean losses."""
        assert self.data is not None
        s, b, rng, part = self.settings, self.settings.batch_size, self.rng, self.local
        res = 4 * 2**stage
        latent = self.config.latent_dim
        index = torch.randint(0, len(self.data), (b,), generator=rng)
        z = torch.randn(b, latent, generator=rng)
        mix = torch.rand(b, generator=rng)
        aug_real, aug_fake = draw_augment(b, res, rng), draw_augment(b, res, rng)
        z_g = torch.randn(b, latent, generator=rng)
        aug_g = draw_augment(b, res, rng)

        # critic
        self.D.requires_grad_(True)
        self.opt_d.zero_grad(set_to_none=True)
        real = self._d_input(self.reals(index[part], stage, alpha), slice_params(aug_real, part))
        with torch.no_grad(), self._autocast():
            fake_raw = self.G(z[part].to(self.device), stage, alpha).float()
        fake = self._d_input(fake_raw, slice_params(aug_fake, part))
        with self._autocast():
            d_real = self.D(real, stage, alpha).float()
            d_fake = self.D(fake, stage, alpha).float()
        eps = mix[part].to(self.device).view(-1, 1, 1, 1, 1)
        mixed = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
        with self._autocast():
            d_mixed = self.D(mixed, stage, alpha).float()
        (grad,) = torch.autograd.grad(d_mixed.sum(), mixed, create_graph=True)
        gp = (grad.float().flatten(1).norm(dim=1) - 1.0).pow(2).mean()
        wdist = d_real.mean() - d_fake.mean()
        loss_d = -wdist + s.gp_weight * gp + s.drift * d_real.pow(2).mean()
        loss_d.backward()
        self._allreduce(self.D)
        self.opt_d.step()

        # generator
        self.D.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        with self._autocast():
            fake_g = self.G(z_g[part].to(self.device), stage, alpha).float()
        with self._autocast():
            loss_g = -self.D(self._d_input(fake_g, slice_params(aug_g, part)), stage, alpha).float().mean()
        loss_g.backward()
        self._allreduce(self.G)
        self.opt_g.step()
        self.update_ema()
        self.steps_done += 1

        values = torch.stack([loss_g.detach(), loss_d.detach(), gp.detach(), wdist.detach()]).float().cpu()
        if self.world > 1:
            dist.all_reduce(values)
            values /= self.world
        g, d, gpv, w = values.tolist()
        return {"g": g, "d": d, "gp": gpv, "wdist": w}

    @torch.no_grad()
    def update_ema(self) -> None:
        decay = min(self.settings.ema_decay, (1 + self.steps_done) / (10 + self.steps_done))
        for ema, live in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            ema.lerp_(live, 1.0 - decay)

    @torch.no_grad()
    def sample(self, n: int, seed: int, stage: int | None = None, alpha: float = 1.0) -> torch.Tensor:
        """EMA generator samples from a fixed seed (does not touch the training generator)."""
        z = torch.randn(n, self.config.latent_dim, generator=torch.Generator().manual_seed(seed))
        return self.G_ema(z.to(self.device), stage, alpha).float().cpu()
