"""One StyleGAN2-ADA training step, replayable from its checkpoint.

Non-saturating logistic loss; lazy regularisation (Karras et al. 2020): R1 on reals every ``R1_INTERVAL``
minibatches, path-length regularisation every ``PL_INTERVAL``, each scaled by its interval and with Adam's learning
rate and betas adjusted by interval / (interval + 1); style mixing; ``w_avg`` tracked in the mapping network; an
exponential moving average of the generator (``g_ema``, what a model folder ships); ADA on everything the
discriminator sees. Adam lr 0.0025, betas (0, 0.99), as in the paper.

Every random draw of a step comes from the trainer's own generator: a step seeds torch's global generator from it
inside ``fork_rng``; the ADA probability, its running sums, ``pl_mean`` and ``w_avg`` are buffers of checkpointed
modules, so a resumed run repeats the uninterrupted one bit for bit.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..slices2d.slices import SliceSet
from .augment import AdaptiveAugment
from .labels import encode
from .network import Discriminator, Generator, StyleGANConfig

__all__ = ["StyleGANTrainer", "TrainSettings", "R1_INTERVAL", "PL_INTERVAL"]

R1_INTERVAL, PL_INTERVAL = 16, 4
W_AVG_BETA = 0.995
PL_DECAY = 0.01
EMA_RAMPUP = 0.05


@dataclass(frozen=True)
class TrainSettings:
    batch_size: int = 8
    lr: float = 0.0025
    r1_gamma: float = 1.0
    pl_weight: float = 2.0
    style_mixing: float = 0.9
    ada_target: float = 0.6
    ada_kimg: float = 500.0
    ema_kimg: float = 2.5
    amp: bool = False


class TrainStats(nn.Module):
    """Running values a resume must restore: the path-length mean and the last regulariser values (for the log)."""

    def __init__(self) -> None:
        super().__init__()
        for name in ("pl_mean", "r1", "pl"):
            self.register_buffer(name, torch.zeros(()))


def _adam(params: object, lr: float, interval: int) -> torch.optim.Adam:
    ratio = interval / (interval + 1)
    return torch.optim.Adam(params, lr=lr * ratio, betas=(0.0, 0.99**ratio), eps=1e-8)


class StyleGANTrainer:
    """Generator, its EMA, discriminator, ADA, optimisers and the step's random generator (what the checkpoint saves)."""

    def __init__(self, config: StyleGANConfig, data: SliceSet, settings: TrainSettings, device: torch.device, seed: int) -> None:
        self.config, self.data, self.settings, self.device = config, data, settings, device
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.G = Generator(config).to(device)
            self.D = Discriminator(config).to(device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        k = len(config.image_channels)
        self.ada = AdaptiveAugment(k, target=settings.ada_target, speed_kimg=settings.ada_kimg).to(device)
        self.stats = TrainStats().to(device)
        self.opt_g = _adam(self.G.parameters(), settings.lr, PL_INTERVAL)
        self.opt_d = _adam(self.D.parameters(), settings.lr, R1_INTERVAL)
        self.rng = torch.Generator().manual_seed(seed)
        self.steps_done = 0

    def modules(self) -> dict[str, nn.Module]:
        return {"g": self.G, "d": self.D, "g_ema": self.G_ema, "ada": self.ada, "stats": self.stats}

    def optimisers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.settings.amp)

    def real_batch(self, n: int) -> torch.Tensor:
        """``n`` training slices in network form: image channels, then the label in the config's encoding."""
        index = torch.randint(0, len(self.data), (n,), generator=self.rng)
        images = self.data.images[index]
        if self.data.labels is not None:
            images = torch.cat([images, encode(self.data.labels[index], self.config.label_encoding)], dim=1)
        return images.to(self.device)

    def _ws(self, n: int, *, track: bool = False) -> torch.Tensor:
        """Per-layer ws for ``n`` fresh latents, two of them style-mixed at a random layer with ``style_mixing`` probability."""
        dim, num_ws = self.config.w_dim, self.config.num_ws
        ws = self.G.ws(torch.randn(n, dim, device=self.device))
        if track:
            self.G.mapping.w_avg.lerp_(ws[:, 0].detach().float().mean(0), 1 - W_AVG_BETA)
        cutoff = int(torch.randint(1, num_ws, ()))
        if float(torch.rand(())) < self.settings.style_mixing:
            ws = torch.cat([ws[:, :cutoff], self.G.ws(torch.randn(n, dim, device=self.device))[:, cutoff:]], dim=1)
        return ws

    def discriminator_step(self, b: int) -> float:
        """One discriminator update on a real and a fake batch (both augmented), and R1 when due; returns the loss."""
        real = self.real_batch(b)
        with torch.no_grad(), self._autocast():
            fake = self.G.synthesis(self._ws(b)).float()
        with self._autocast():
            real_logits, fake_logits = self.D(self.ada(real)).float(), self.D(self.ada(fake)).float()
        self.ada.observe(real_logits)
        loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        if self.steps_done % R1_INTERVAL == 0 and self.settings.r1_gamma > 0:
            real = real.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.D(self.ada(real)).sum(), real, create_graph=True)
            r1 = grad.square().sum(dim=(1, 2, 3)).mean()
            self.opt_d.zero_grad(set_to_none=True)
            (r1 * (self.settings.r1_gamma / 2) * R1_INTERVAL).backward()
            self.opt_d.step()
            self.stats.r1.copy_(r1.detach())
        return loss.item()

    def generator_step(self, b: int) -> float:
        """One generator update, and path-length regularisation when due; returns the loss."""
        self.D.requires_grad_(False)
        with self._autocast():
            loss = F.softplus(-self.D(self.ada(self.G.synthesis(self._ws(b, track=True))).float())).mean()
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        if self.steps_done % PL_INTERVAL == 0 and self.settings.pl_weight > 0:
            ws = self._ws(max(b // 2, 1))
            images = self.G.synthesis(ws)
            noise = torch.randn_like(images) / math.sqrt(images.shape[2] * images.shape[3])
            (grad,) = torch.autograd.grad((images * noise).sum(), ws, create_graph=True)
            lengths = grad.square().sum(dim=2).mean(dim=1).sqrt()
            pl_mean = self.stats.pl_mean.lerp(lengths.mean().detach(), PL_DECAY)
            self.stats.pl_mean.copy_(pl_mean)
            penalty = (lengths - pl_mean).square().mean()
            self.opt_g.zero_grad(set_to_none=True)
            (penalty * self.settings.pl_weight * PL_INTERVAL).backward()
            self.opt_g.step()
            self.stats.pl.copy_(penalty.detach())
        self.D.requires_grad_(True)
        return loss.item()

    @torch.no_grad()
    def _update_ema(self, images_seen: int) -> None:
        half_life = min(self.settings.ema_kimg * 1000, images_seen * EMA_RAMPUP)
        beta = 0.5 ** (self.settings.batch_size / max(half_life, 1e-8))
        for p_ema, p in zip(self.G_ema.parameters(), self.G.parameters(), strict=True):
            p_ema.lerp_(p, 1 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers(), strict=True):
            b_ema.copy_(b)

    def step(self) -> dict[str, float]:
        """One discriminator update (and R1 when due), one generator update (and path length when due), ADA, EMA."""
        b = self.settings.batch_size
        self.G.train()
        self.D.train()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=self.rng)))
            loss_d = self.discriminator_step(b)
            loss_g = self.generator_step(b)
            if (self.steps_done + 1) % self.ada.interval == 0:
                self.ada.adjust(b)
            self._update_ema((self.steps_done + 1) * b)
        self.steps_done += 1
        return {
            "g": loss_g, "d": loss_d, "r1": float(self.stats.r1), "pl": float(self.stats.pl),
            "ada_p": float(self.ada.p), "ada_rt": float(self.ada.rt),
        }

    @torch.no_grad()
    def sample(self, n: int, seed: int, psi: float = 1.0) -> torch.Tensor:
        """``n`` samples (N, C, R, R) on the CPU from fixed latents: the EMA generator with its fixed noise."""
        z = torch.randn(n, self.config.w_dim, generator=torch.Generator().manual_seed(seed)).to(self.device)
        return self.G_ema(z, psi=psi, noise_mode="const").float().cpu()
