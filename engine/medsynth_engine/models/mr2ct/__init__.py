"""The ``mr2ct`` family: a CT channel in Hounsfield units from T1 alone (or with t1ce, t2, flair when present).
A channel model: ``medsynth add-channel --channel ct``, on the channel-model framework (``models.channelnet``)."""

from ...contract import Capabilities, ModelFamily, TrainerSpec
from .options import MR2CTOptions

__all__ = ["FAMILY", "MR2CTOptions"]

FAMILY = ModelFamily(
    name="mr2ct",
    architecture="mr2ct",
    kind="translation",
    summary="MONAI UNet regression of HU from MR, optionally with a PatchGAN critic",
    capabilities=Capabilities(dims=3, channel="ct"),
    load="medsynth_engine.models.channelnet.model:load_mr2ct",
    shipped=("mr2ct-phantom",),
    trainer=TrainerSpec(train="medsynth_engine.models.mr2ct.train:train", options=MR2CTOptions),
)
