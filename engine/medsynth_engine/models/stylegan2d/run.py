"""One stylegan2d training run: the shared 2D slice-GAN run (``slices2d.run``) with StyleGAN2-ADA's config, trainer and card."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..slices2d.run import MOSAIC_SAMPLES, SAMPLE_SEED, SliceGANRun
from .labels import DESCRIPTIONS, one_hot_scores
from .network import StyleGANConfig
from .trainer import PL_INTERVAL, R1_INTERVAL, StyleGANTrainer, TrainSettings

__all__ = ["StyleGANRun", "TENSOR_PREFIXES"]

#: Model-folder tensors: the EMA generator (what generation uses), the raw generator and the discriminator.
TENSOR_PREFIXES = {"generator.": "G_ema", "generator_raw.": "G", "discriminator.": "D"}


class StyleGANRun(SliceGANRun):
    family = "stylegan2d"
    default_resolution, default_width = 128, 512

    def config_from_dict(self, data: dict) -> StyleGANConfig:
        return StyleGANConfig.from_dict(data)

    def make_config(self, resolution: int, image_channels: list[str], labels: bool, width: int) -> StyleGANConfig:
        return StyleGANConfig(
            resolution=resolution, image_channels=image_channels, labels=labels, width=width, mapping_layers=self.options.mapping_layers,
            label_encoding=self.options.label_encoding,
        )

    def make_trainer(self, device: torch.device) -> StyleGANTrainer:
        request, options = self.request, self.options
        settings = TrainSettings(
            batch_size=request.batch_size, lr=options.learning_rate, r1_gamma=options.r1_gamma, pl_weight=options.pl_weight, style_mixing=options.style_mixing,
            ada_target=options.ada_target, ada_kimg=options.ada_kimg, ema_kimg=request.batch_size * 10 / 32, amp=request.amp,
        )
        return StyleGANTrainer(self.config, self.data, settings, device, request.seed)

    def load_base(self, tensors: dict[str, torch.Tensor]) -> None:
        for prefix, attribute in TENSOR_PREFIXES.items():
            module = getattr(self.trainer, attribute)
            module.load_state_dict({k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)})

    def model_tensors(self) -> dict[str, torch.Tensor]:
        tensors = {}
        for prefix, attribute in TENSOR_PREFIXES.items():
            tensors.update({f"{prefix}{k}": v for k, v in getattr(self.trainer, attribute).state_dict().items()})
        return tensors

    def mosaic_samples(self) -> np.ndarray:
        samples = self.trainer.sample(MOSAIC_SAMPLES, SAMPLE_SEED)
        k = len(self.config.image_channels)
        return (one_hot_scores(samples, k, self.config.label_encoding) if self.config.labels else samples).numpy()

    def training_card(self) -> dict[str, Any]:
        s = self.trainer.settings
        return {
            "loss": "non-saturating logistic (StyleGAN2)",
            "optimiser": f"Adam lr {s.lr:g}, betas (0, 0.99), eps 1e-8; lazy regularisation scales lr and betas by interval/(interval+1)",
            "r1": f"gamma {s.r1_gamma:g} every {R1_INTERVAL} minibatches",
            "path_length": f"weight {s.pl_weight:g} every {PL_INTERVAL} minibatches, decay 0.01, batch halved",
            "style_mixing": s.style_mixing,
            "ema": f"generator EMA, half-life {s.ema_kimg:g} thousand images (ramp-up 0.05)",
            "ada": {
                "pipeline": "x-flip, 90-degree rotations, integer translation (0.125), isotropic scale (log2 std 0.2), rotation, "
                "anisotropic scale (log2 std 0.2), fractional translation (std 0.125), brightness (std 0.2) and contrast "
                "(log2 std 0.5) on image channels only; one bilinear resampling with reflection padding",
                "target": s.ada_target,
                "speed_kimg": s.ada_kimg,
                "p": round(float(self.trainer.ada.p), 6),
            },
            "label_channel": DESCRIPTIONS[self.config.label_encoding],
        }
