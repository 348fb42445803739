"""``segnet``: BraTS tumour labels (NCR, ED, ET) from whichever of t1, t1ce, t2, flair a case has."""

from pathlib import Path

from .model import ChannelModel

__all__ = ["ChannelModel", "SHIPPED_ID", "shipped_folder"]

SHIPPED_ID = "seg-phantom"


def shipped_folder() -> Path:
    return Path(__file__).resolve().parents[2] / "weights" / SHIPPED_ID
