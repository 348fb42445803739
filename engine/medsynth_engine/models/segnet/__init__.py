"""The ``seg`` family (architecture ``segnet``): BraTS tumour labels (NCR, ED, ET) from whichever of t1, t1ce,
t2, flair a case has. A channel model: ``medsynth add-channel --channel seg``. The network, inputs and fitting
are the channel-model framework's (``models.channelnet``), shared with ``mr2ct``."""

from ...contract import Capabilities, ModelFamily, TrainerSpec

__all__ = ["FAMILY"]

FAMILY = ModelFamily(
    name="seg",
    architecture="segnet",
    kind="segmentation",
    summary="MONAI UNet: tumour labels (NCR, ED, ET) from any subset of t1, t1ce, t2, flair",
    capabilities=Capabilities(dims=3, channel="seg"),
    load="medsynth_engine.models.channelnet.model:load_segnet",
    shipped=("seg-phantom",),
    trainer=TrainerSpec(train="medsynth_engine.models.segnet.train:train"),
)
