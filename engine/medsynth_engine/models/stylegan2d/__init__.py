"""The ``stylegan2d`` family: StyleGAN2 with adaptive discriminator augmentation on five-channel axial slices.

Networks in ``network``, ADA in ``augment``, the continuous tumour channel in ``labels``, the step in
``trainer``, the run in ``run``, sampling with truncation in ``plugin``, projection into W in ``project``.
Slices, mosaics and 2D output are shared with dcgan2d (``models.slices2d``). Nothing here imports torch until a
model is loaded or trained.
"""

from ...contract import Capabilities, ModelFamily, TrainerSpec
from .options import StyleGANOptions

__all__ = ["FAMILY", "StyleGANOptions"]

FAMILY = ModelFamily(
    name="stylegan2d",
    architecture="stylegan2d",
    kind="gan",
    summary="2D StyleGAN2-ADA for axial slices: t1, t1ce, t2, flair and the tumour label as a fifth channel; truncation, projection",
    capabilities=Capabilities(dims=2),
    load="medsynth_engine.models.stylegan2d.plugin:StyleGAN2DModel",
    trainer=TrainerSpec(train="medsynth_engine.models.stylegan2d.train:train", options=StyleGANOptions),
)
