"""One dcgan2d training run: the shared 2D slice-GAN run (``slices2d.run``) with the DCGAN's config, trainer and card."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..slices2d.run import MOSAIC_SAMPLES, SAMPLE_SEED, SliceGANRun
from .network import DCGANConfig
from .trainer import GP_WEIGHT, DCGANTrainer, TrainSettings

__all__ = ["DCGANRun"]


class DCGANRun(SliceGANRun):
    family = "dcgan2d"
    default_resolution, default_width = 256, 1024

    def config_from_dict(self, data: dict) -> DCGANConfig:
        return DCGANConfig.from_dict(data)

    def make_config(self, resolution: int, image_channels: list[str], labels: bool, width: int) -> DCGANConfig:
        return DCGANConfig(
            resolution=resolution, image_channels=image_channels, labels=labels, width=width,
            upsample=self.options.upsample, dropout=self.options.dropout,
        )

    def make_trainer(self, device: torch.device) -> DCGANTrainer:
        request = self.request
        settings = TrainSettings(batch_size=request.batch_size, critic_steps=self.options.critic_steps, amp=request.amp)
        return DCGANTrainer(self.config, self.data, settings, device, request.seed)

    def load_base(self, tensors: dict[str, torch.Tensor]) -> None:
        for name, module in (("generator.", self.trainer.G), ("critic.", self.trainer.D)):
            module.load_state_dict({k[len(name) :]: v for k, v in tensors.items() if k.startswith(name)})

    def model_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {f"generator.{k}": v for k, v in self.trainer.G.state_dict().items()}
        tensors.update({f"critic.{k}": v for k, v in self.trainer.D.state_dict().items()})
        return tensors

    def mosaic_samples(self) -> np.ndarray:
        return self.trainer.sample(MOSAIC_SAMPLES, SAMPLE_SEED).numpy()

    def training_card(self) -> dict[str, Any]:
        config = self.config
        return {
            "loss": f"Wasserstein with gradient penalty (WGAN-GP, weight {GP_WEIGHT:g}; not weight clipping), drift 1e-3",
            "optimiser": "Adam lr 2e-4, betas (0.5, 0.999), weight decay 1e-3",
            "critic_steps": self.options.critic_steps,
            "critic": "the poster's Table II with 256 channels at 16x16 (its '156' breaks the doubling 32..1024, so read as a "
            "typo), layer norm instead of batch norm (batch norm makes WGAN-GP's per-sample gradient penalty meaningless), "
            f"input noise std {config.critic_noise:g} on every layer",
            "upsample": config.upsample,
        }
