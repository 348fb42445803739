"""One WGAN-GP training step of the 2D DCGAN, replayable from its checkpoint.

Wasserstein loss with a gradient penalty (weight 10, Gulrajani et al. 2017) rather than the original WGAN's
weight clipping; Adam at 2e-4, beta1 0.5, weight decay 1e-3, as in the poster. Every random draw of a step
(batch, latents, dropout, the critic's input noise, the penalty's interpolation) comes from the trainer's own
generator: a step seeds torch's global generator from it inside ``fork_rng``, so a resumed run repeats the
uninterrupted one exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..slices2d.slices import SliceSet
from .network import Critic, DCGANConfig, Generator

__all__ = ["DCGANTrainer", "TrainSettings"]

GP_WEIGHT = 10.0
DRIFT = 1e-3  # keeps the critic's scores near zero (Karras et al. 2018); harmless for WGAN-GP


@dataclass(frozen=True)
class TrainSettings:
    batch_size: int = 8
    critic_steps: int = 2
    lr: float = 2e-4
    betas: tuple[float, float] = (0.5, 0.999)
    weight_decay: float = 1e-3
    amp: bool = False


class DCGANTrainer:
    """Generator, critic, their optimisers and the step's random generator (what ``training.checkpoint`` saves)."""

    def __init__(self, config: DCGANConfig, data: SliceSet, settings: TrainSettings, device: torch.device, seed: int) -> None:
        self.config, self.data, self.settings, self.device = config, data, settings, device
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.G = Generator(config).to(device)
            self.D = Critic(config).to(device)
        adam = dict(lr=settings.lr, betas=settings.betas, weight_decay=settings.weight_decay)
        self.opt_g = torch.optim.Adam(self.G.parameters(), **adam)
        self.opt_d = torch.optim.Adam(self.D.parameters(), **adam)
        self.rng = torch.Generator().manual_seed(seed)
        self.steps_done = 0

    def modules(self) -> dict[str, torch.nn.Module]:
        return {"g": self.G, "d": self.D}

    def optimisers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt_g": self.opt_g, "opt_d": self.opt_d}

    def _autocast(self) -> torch.autocast:
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.settings.amp)

    def _latents(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.config.latent_dim, generator=self.rng).to(self.device)

    def _penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        t = torch.rand(real.shape[0], 1, 1, 1, generator=self.rng).to(self.device)
        mixed = (t * real + (1 - t) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.D(mixed).sum(), mixed, create_graph=True)
        return ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()

    def step(self) -> dict[str, float]:
        """One generator update after ``critic_steps`` critic updates; returns the losses."""
        s, b = self.settings, self.settings.batch_size
        self.G.train()
        self.D.train()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=self.rng)))
            for _ in range(s.critic_steps):
                real = self.data.batch(torch.randint(0, len(self.data), (b,), generator=self.rng)).to(self.device)
                with torch.no_grad(), self._autocast():
                    fake = self.G(self._latents(b)).float()
                with self._autocast():
                    d_real, d_fake = self.D(real).float(), self.D(fake).float()
                gp = self._penalty(real, fake)
                wdist = d_real.mean() - d_fake.mean()
                loss_d = -wdist + GP_WEIGHT * gp + DRIFT * (d_real**2).mean()
                self.opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                self.opt_d.step()
            self.D.requires_grad_(False)
            with self._autocast():
                loss_g = -self.D(self.G(self._latents(b))).float().mean()
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
            self.D.requires_grad_(True)
        self.steps_done += 1
        return {"g": loss_g.item(), "d": loss_d.item(), "gp": gp.item(), "wdist": wdist.item()}

    @torch.no_grad()
    def sample(self, n: int, seed: int) -> torch.Tensor:
        """``n`` samples (N, C, R, R) on the CPU from fixed latents, the generator in inference mode."""
        z = torch.randn(n, self.config.latent_dim, generator=torch.Generator().manual_seed(seed)).to(self.device)
        self.G.eval()
        out = self.G(z).float().cpu()
        self.G.train()
        return out
