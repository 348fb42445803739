"""The ``pgan3d`` family: a 3D progressive GAN for multi-channel brain MRI with tumour labels.

Networks in ``network``, sampling in ``plugin``, training in ``train`` (its run, trainer, schedule, DiffAugment
and base-model resolution beside it). Nothing here imports torch until a model is loaded or trained.
"""

from ...contract import Capabilities, ModelFamily, TrainerSpec
from .options import PGANOptions

__all__ = ["FAMILY", "PGANOptions"]

FAMILY = ModelFamily(
    name="pgan3d",
    architecture="pgan3d",
    kind="gan",
    summary="3D progressive GAN (WGAN-GP, progressive growing, EMA generator) for MR sequences and tumour labels",
    capabilities=Capabilities(dims=3),
    load="medsynth_engine.models.pgan3d.plugin:PGAN3DModel",
    shipped=("pgan3d-phantom",),
    trainer=TrainerSpec(train="medsynth_engine.models.pgan3d.train:train", options=PGANOptions),
)
