"""ldm3d's networks and schedulers, all MONAI's own: AutoencoderKL, DiffusionModelUNet, DDPM/DDIM schedulers.

Volumes enter the autoencoder as the image channels in [-1, 1] followed by the label map as a soft one-hot
over (background, NCR, ED, ET) scaled to [-1, 1], so sequences and labels are encoded and generated together
(as in pgan3d). Masks condition the diffusion UNet by *channel concatenation* (MONAI's ``mode="concat"``):
four extra latent-grid channels, a "conditioned" flag and the fraction of NCR, ED and ET in each latent voxel,
all scaled to [-1, 1]. Training drops the condition (every channel -1, MONAI's ``cfg_fill_value``) for a share
of the batches, classifier-free style, so the same network also samples unconditionally. Concatenation was
chosen over a ControlNet because it trains in one stage together with the UNet: on a CPU budget a third stage
(ControlNet on a frozen UNet) could not be afforded and would learn the same mapping more slowly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from monai.networks.nets import AutoencoderKL, DiffusionModelUNet
from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

from MedSynthLib.conventions import LABEL_CHANNEL

from ...data.preprocess import LABEL_CODES
from .options import STAGES

__all__ = [
    "LDMConfig",
    "STAGES",
    "autoencoder_widths",
    "build_autoencoder",
    "build_unet",
    "training_scheduler",
    "sampling_scheduler",
    "condition_from_codes",
    "unconditional",
    "CONDITION_CHANNELS",
    "FILL_VALUE",
]

#: Tumour classes of the condition, as BraTS codes (after the flag channel).
CONDITION_CODES = (1, 2, 4)
CONDITION_CHANNELS = 1 + len(CONDITION_CODES)
#: Value of every condition channel when sampling without a mask (classifier-free "no condition").
FILL_VALUE = -1.0


@dataclass
class LDMConfig:
    """Everything that fixes the networks' shapes, plus the latent scale found after the autoencoder stage."""

    name: str = "ldm3d"
    resolution: int = 48
    image_channels: list[str] = field(default_factory=lambda: ["t1", "t1ce", "t2", "flair"])
    labels: bool = True
    ae_channels: list[int] = field(default_factory=lambda: [16, 32, 64])
    latent_channels: int = 4
    unet_channels: list[int] = field(default_factory=lambda: [32, 64, 64])
    unet_attention: list[bool] = field(default_factory=lambda: [False, False, True])
    norm_groups: int = 8
    train_timesteps: int = 1000
    beta_start: float = 0.0015
    beta_end: float = 0.0205
    prediction_type: str = "v_prediction"
    condition_dropout: float = 0.2
    kl_weight: float = 1e-6
    tumour_weight: float = 20.0  # L1 weight of tumour voxels (and one voxel around them) relative to the rest
    scale_factor: float = 1.0
    default_steps: int = 10
    guidance: float = 3.0  # classifier-free guidance scale when a mask is given (1: none)

    @property
    def in_channels(self) -> int:
        return len(self.image_channels) + (len(LABEL_CODES) if self.labels else 0)

    @property
    def downsample(self) -> int:
        """How many times smaller the latent grid's side is than the volume's (each autoencoder level halves it)."""
        return 2 ** (len(self.ae_channels) - 1)

    @property
    def latent_resolution(self) -> int:
        return self.resolution // self.downsample

    @property
    def channels(self) -> list[str]:
        return list(self.image_channels) + ([LABEL_CHANNEL] if self.labels else [])

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict) -> LDMConfig:
        known = set(LDMConfig.__dataclass_fields__)
        return LDMConfig(**{k: v for k, v in data.items() if k in known})


def autoencoder_widths(width: int, downsample: int) -> list[int]:
    """Autoencoder channel widths for latents 1/``downsample`` of the side: one level per halving, width doubling."""
    return [width * 2**i for i in range(downsample.bit_length())]


def build_autoencoder(config: LDMConfig) -> AutoencoderKL:
    levels = len(config.ae_channels)
    return AutoencoderKL(
        spatial_dims=3,
        in_channels=config.in_channels,
        out_channels=config.in_channels,
        channels=tuple(config.ae_channels),
        latent_channels=config.latent_channels,
        num_res_blocks=1,
        attention_levels=(False,) * levels,
        norm_num_groups=config.norm_groups,
        with_encoder_nonlocal_attn=False,
        with_decoder_nonlocal_attn=False,
    )


def build_unet(config: LDMConfig) -> DiffusionModelUNet:
    return DiffusionModelUNet(
        spatial_dims=3,
        in_channels=config.latent_channels + CONDITION_CHANNELS,
        out_channels=config.latent_channels,
        channels=tuple(config.unet_channels),
        attention_levels=tuple(config.unet_attention),
        num_res_blocks=1,
        norm_num_groups=config.norm_groups,
        num_head_channels=16,
    )


def _schedule(config: LDMConfig) -> dict:
    return {
        "num_train_timesteps": config.train_timesteps,
        "schedule": "scaled_linear_beta",
        "beta_start": config.beta_start,
        "beta_end": config.beta_end,
        "prediction_type": config.prediction_type,
    }


def training_scheduler(config: LDMConfig) -> DDPMScheduler:
    return DDPMScheduler(clip_sample=False, **_schedule(config))


def sampling_scheduler(config: LDMConfig, steps: int) -> DDIMScheduler:
    """DDIM (deterministic, eta 0) over ``steps`` evenly spaced timesteps."""
    scheduler = DDIMScheduler(clip_sample=False, set_alpha_to_one=True, **_schedule(config))
    scheduler.set_timesteps(int(steps))
    return scheduler


def condition_from_codes(codes: torch.Tensor, latent_resolution: int) -> torch.Tensor:
    """(N, X, Y, Z) BraTS codes on the image grid -> (N, 4, L, L, L) condition on the latent grid."""
    hot = torch.stack([(codes == c) for c in CONDITION_CODES], dim=1).float()
    fractions = F.adaptive_avg_pool3d(hot, latent_resolution)
    flag = torch.ones_like(fractions[:, :1])
    return torch.cat([flag, fractions * 2.0 - 1.0], dim=1)


def unconditional(n: int, latent_resolution: int, device: torch.device | str = "cpu") -> torch.Tensor:
    return torch.full((n, CONDITION_CHANNELS, *(latent_resolution,) * 3), FILL_VALUE, device=device)


def codes_to_network(codes: np.ndarray) -> np.ndarray:
    """(X, Y, Z) BraTS codes -> (4, X, Y, Z) one-hot over background, NCR, ED, ET in [-1, 1]."""
    return np.stack([(codes == c) for c in LABEL_CODES]).astype(np.float32) * 2.0 - 1.0
