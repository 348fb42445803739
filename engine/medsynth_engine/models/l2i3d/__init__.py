"""The ``l2i3d`` family: labels first, then image (as MAISI and med-ddpm generate).

A case is made in two steps:
1. a label map is drawn: brain tissue classes (CSF, grey and white matter) and the BraTS tumour labels, from
   the phantom's anatomy and tumour model (``labels.sample_label_map``), or the tumour from a drawn mask;
2. a learned mask-conditioned 3D U-Net renders the four MR sequences from that map, as a per-voxel Gaussian
   (mean and standard deviation per sequence), sampled with the case's seed (``plugin``).

What is learned is the rendering: every sequence's contrast per tissue and tumour compartment, partial volumes
at boundaries, the enhancement pattern and the noise. Training needs only image + tumour-label cases (BraTS
layout): the tissue classes are derived from each case's T1 by the same labeller the sampler uses (``labels``).
Nothing here imports torch until a model is loaded or trained.
"""

from ...contract import Capabilities, ModelFamily, TrainerSpec

__all__ = ["FAMILY"]

FAMILY = ModelFamily(
    name="l2i3d",
    architecture="l2i3d",
    kind="translation",
    summary="labels first, then image: phantom anatomy and tumour label maps rendered into T1/T1ce/T2/FLAIR by a learned "
    "mask-conditioned 3D U-Net (per-voxel Gaussian decoder)",
    capabilities=Capabilities(dims=3, mask=True),
    load="medsynth_engine.models.l2i3d.plugin:L2I3DModel",
    shipped=("l2i3d-phantom",),
    trainer=TrainerSpec(train="medsynth_engine.models.l2i3d.train:train"),
)
