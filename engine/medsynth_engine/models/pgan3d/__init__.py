"""The ``pgan3d`` plugin: a 3D progressive GAN for multi-channel brain MRI with tumour labels."""

from .network import Discriminator, Generator, PGANConfig
from .plugin import PGAN3DModel, register

__all__ = ["PGANConfig", "Generator", "Discriminator", "PGAN3DModel", "register"]
