"""The ``dcgan2d`` family: the 2D DCGAN of the BraTS MRI-generation poster, with its grid-artefact fix.

Networks in ``network``, slice selection in ``slices``, the WGAN-GP step in ``trainer``, the run in ``run``,
sampling in ``plugin``. Nothing here imports torch until a model is loaded or trained.
"""

from ...contract import Capabilities, ModelFamily, TrainerSpec
from .options import DCGANOptions

__all__ = ["FAMILY", "DCGANOptions"]

FAMILY = ModelFamily(
    name="dcgan2d",
    architecture="dcgan2d",
    kind="gan",
    summary="2D DCGAN of the BraTS poster (WGAN-GP; resize or transposed upsampling) for axial slices and tumour labels",
    capabilities=Capabilities(dims=2),
    shipped=("dcgan2d-phantom",),
    load="medsynth_engine.models.dcgan2d.plugin:DCGAN2DModel",
    trainer=TrainerSpec(train="medsynth_engine.models.dcgan2d.train:train", options=DCGANOptions),
)
