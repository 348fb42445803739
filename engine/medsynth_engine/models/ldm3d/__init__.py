"""The ``ldm3d`` family: MONAI latent diffusion for multi-channel brain MRI with tumour labels and mask control.

Networks in ``network``, sampling (unconditional, mask-conditioned, inpainting) in ``plugin``, the two
training stages in ``train``. Nothing here imports torch until a model is loaded or trained.
"""

from ...contract import Capabilities, ModelFamily, TrainerSpec
from .options import STAGES, LDMOptions

__all__ = ["FAMILY", "LDMOptions", "STAGES"]

FAMILY = ModelFamily(
    name="ldm3d",
    architecture="ldm3d",
    kind="diffusion",
    summary="MONAI latent diffusion (AutoencoderKL + DiffusionModelUNet), conditioned on a tumour label map",
    capabilities=Capabilities(dims=3, mask=True, inpaint=True),
    load="medsynth_engine.models.ldm3d.plugin:LDM3DModel",
    shipped=("ldm3d-phantom",),
    trainer=TrainerSpec(train="medsynth_engine.models.ldm3d.train:train", options=LDMOptions),
)
