"""The ``ldm3d`` plugin: MONAI latent diffusion for multi-channel brain MRI with tumour labels and mask control."""

from .network import LDMConfig
from .plugin import LDM3DModel, register

__all__ = ["LDMConfig", "LDM3DModel", "register"]
