"""The ldm3d model plugin: seeded latent-diffusion sampling, mask-conditioned generation and latent inpainting.

Sampling runs MONAI's ``LatentDiffusionInferer`` with a DDIM scheduler (eta 0, so the same seed and device give
identical voxels) for ``steps`` steps (the card's ``default_steps`` unless given). bf16 autocast is used on
CUDA devices that support it; CPUs without bf16 hardware run it slower than fp32 (bench/results/ldm3d.md), so
CPU sampling stays fp32.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from monai.inferers import LatentDiffusionInferer

from MedSynthLib.conventions import LABEL_CHANNEL

from ...contract import ModelPlugin, SynthCase
from ...data.preprocess import LABEL_CODES, grid_affine
from ...errors import MedSynthError
from ...modelfile import ModelCard, load_model_folder
from .network import (
    FILL_VALUE,
    LDMConfig,
    build_autoencoder,
    build_unet,
    condition_from_codes,
    sampling_scheduler,
    unconditional,
)

__all__ = ["LDM3DModel", "sample_volumes", "autocast_for", "MAX_STEPS"]

MAX_STEPS = 1000


def autocast_for(device: torch.device):
    """bf16 autocast where the hardware has it (CUDA with bf16); a no-op context elsewhere."""
    enabled = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)


def _noise(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(int(seed)))


def sample_volumes(
    config: LDMConfig,
    autoencoder: torch.nn.Module,
    unet: torch.nn.Module,
    condition: torch.Tensor,
    seed: int,
    steps: int,
    device: torch.device,
    *,
    amp: bool | None = None,
) -> torch.Tensor:
    """Network-scale volumes (N, C, R, R, R) for a batch of conditions (see ``network.condition_from_codes``)."""
    n, latent = condition.shape[0], config.latent_resolution
    conditioned = bool((condition[:, 0] > 0).any())
    cfg = float(config.guidance) if conditioned and config.guidance != 1.0 else None
    noise = _noise((n, config.latent_channels, latent, latent, latent), seed).to(device)
    scheduler = sampling_scheduler(config, steps)
    inferer = LatentDiffusionInferer(scheduler=scheduler, scale_factor=config.scale_factor)
    context = autocast_for(device) if amp is None else torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)
    with torch.no_grad(), context:
        out = inferer.sample(
            input_noise=noise,
            autoencoder_model=autoencoder,
            diffusion_model=unet,
            scheduler=scheduler,
            conditioning=condition.to(device),
            mode="concat",
            verbose=False,
            cfg=cfg,
            cfg_fill_value=FILL_VALUE,
        )
    return out.float()


class LDM3DModel(ModelPlugin):
    """A trained ldm3d model folder (autoencoder + diffusion UNet)."""

    supports_mask = True

    def __init__(self, folder: Path, card: ModelCard | None = None) -> None:
        self.folder = Path(folder)
        self.card, tensors = load_model_folder(self.folder)
        self.config = LDMConfig.from_dict(self.card.architecture)
        self.autoencoder = build_autoencoder(self.config).eval().requires_grad_(False)
        self.unet = build_unet(self.config).eval().requires_grad_(False)
        self.has_diffusion = any(k.startswith("unet.") for k in tensors)
        try:
            self.autoencoder.load_state_dict({k[12:]: v for k, v in tensors.items() if k.startswith("autoencoder.")})
            if self.has_diffusion:
                self.unet.load_state_dict({k[5:]: v for k, v in tensors.items() if k.startswith("unet.")})
        except RuntimeError:
            raise MedSynthError(f"The weights in {folder} do not fit the ldm3d architecture its card describes.") from None
        self._device: torch.device | None = None
        self.steps: int | None = None  # sampling steps; None: the card's default

    def _on(self, device: Any) -> torch.device:
        device = torch.device(device or "cpu")
        if self._device != device:
            self.autoencoder.to(device)
            self.unet.to(device)
            self._device = device
        if not self.has_diffusion:
            raise MedSynthError(f"The ldm3d model {self.folder} has only its autoencoder trained; train its diffusion stage (medsynth finetune --resume).")
        return device

    def sampling_steps(self, steps: int | None = None) -> int:
        steps = int(steps if steps is not None else self.steps or self.config.default_steps)
        if not 1 <= steps <= MAX_STEPS:
            raise MedSynthError(f"The number of sampling steps must be 1 to {MAX_STEPS}, not {steps}.")
        return steps

    def to_physical(self, output: np.ndarray, *, dtype: Any = np.int16) -> dict[str, np.ndarray]:
        """Network output (C, X, Y, Z) -> image channels on the training scale (card), labels as BraTS codes."""
        scales = self.card.preprocessing.get("normalisation", {}).get("channels", {})
        arrays: dict[str, np.ndarray] = {}
        for i, channel in enumerate(self.config.image_channels):
            low, high = (scales.get(channel, {}).get(k, d) for k, d in (("low", -1.0), ("high", 1.0)))
            value = (np.clip(output[i], -1.0, 1.0) + 1.0) / 2.0 * (high - low) + low
            arrays[channel] = np.clip(np.rint(value), -32768, 32767).astype(dtype) if dtype == np.int16 else value.astype(dtype)
        if self.config.labels:
            k = len(self.config.image_channels)
            arrays[LABEL_CHANNEL] = np.asarray(LABEL_CODES, dtype=np.uint8)[np.argmax(output[k:], axis=0)]
        return arrays

    def generate(
        self,
        *,
        seed: int,
        channels: tuple[str, ...],
        shape: tuple[int, int, int],
        spacing: tuple[float, float, float],
        tumour: bool,
        device: Any,
        mask: Path | None = None,
    ) -> SynthCase:
        device = self._on(device)
        affine = grid_affine(shape, spacing)
        latent = self.config.latent_resolution
        codes = None
        if mask is not None:
            from ...masks import load_mask

            codes = load_mask(Path(mask), (tuple(shape), affine))
            condition = condition_from_codes(torch.from_numpy(codes)[None], latent)
        elif not tumour:
            condition = condition_from_codes(torch.zeros((1, *shape), dtype=torch.uint8), latent)
        else:
            condition = unconditional(1, latent)
        steps = self.sampling_steps()
        output = sample_volumes(self.config, self.autoencoder, self.unet, condition, seed, steps, device).cpu().numpy()[0]
        arrays = self.to_physical(output)
        if codes is not None:
            from ...addtumour import check_inside_head

            check_inside_head(codes, {c: a for c, a in arrays.items() if c != LABEL_CHANNEL}, "the generated head")
        if LABEL_CHANNEL in arrays:
            if codes is not None:
                arrays[LABEL_CHANNEL] = codes  # the label channel written is the mask itself
            elif not tumour:
                arrays[LABEL_CHANNEL] = np.zeros(shape, dtype=np.uint8)
        params = {"latent_seed": int(seed), "model": self.id, "sampling_steps": steps, "mask": mask is not None}
        return SynthCase(arrays={c: arrays[c] for c in channels}, affine=affine, params=params)

    def inpaint(self, volume: np.ndarray, region: np.ndarray, codes: np.ndarray, *, seed: int, steps: int | None, device: Any) -> np.ndarray:
        """Regenerate ``region`` of a network-scale volume (C, R, R, R) so it shows the label map ``codes``.

        RePaint in latent space: the volume is encoded; at every DDIM step the latent outside the (latent-grid)
        region is replaced by the encoded volume noised to that step, so the new content is generated to fit
        its surroundings; the decoded result is returned (the caller blends it into the image).
        """
        device = self._on(device)
        config, latent = self.config, self.config.latent_resolution
        scheduler = sampling_scheduler(config, self.sampling_steps(steps))
        x = torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))[None].to(device)
        known_region = torch.from_numpy(region.astype(np.float32))[None, None]
        inside = F.adaptive_max_pool3d(known_region, latent)
        inside = (F.max_pool3d(inside, 3, stride=1, padding=1) > 0).to(device)
        condition = condition_from_codes(torch.from_numpy(codes.astype(np.uint8))[None], latent).to(device)
        with torch.no_grad(), autocast_for(device):
            z0 = self.autoencoder.encode(x)[0].float() * config.scale_factor
            known_noise = _noise(tuple(z0.shape), seed + 1).to(device)
            z = _noise(tuple(z0.shape), seed).to(device)
            timesteps = list(scheduler.timesteps)
            for i, t in enumerate(timesteps):
                t_tensor = torch.full((1,), int(t), device=device, dtype=torch.long)
                z = torch.where(inside, z, scheduler.add_noise(z0, known_noise, t_tensor))
                out = self._guided(z, condition, t_tensor)
                z, _ = scheduler.step(out, int(t), z)
                if i == len(timesteps) - 1:
                    z = torch.where(inside, z, z0)
            decoded = self.autoencoder.decode_stage_2_outputs(z / config.scale_factor).float()
        return decoded.cpu().numpy()[0]


    def _guided(self, z: torch.Tensor, condition: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The UNet's output with classifier-free guidance towards ``condition`` (as MONAI's inferer does)."""
        scale = float(self.config.guidance)
        if scale == 1.0:
            return self.unet(torch.cat([z, condition], dim=1), timesteps=t).float()
        both = torch.cat([torch.cat([z, torch.full_like(condition, FILL_VALUE)], 1), torch.cat([z, condition], 1)])
        uncond, cond = self.unet(both, timesteps=t.repeat(2)).float().chunk(2)
        return uncond + scale * (cond - uncond)


