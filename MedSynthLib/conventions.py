"""Channel names, BraTS label codes and their colours: the conventions users' other tools expect."""

from __future__ import annotations

__all__ = [
    "IMAGE_CHANNELS",
    "ALL_CHANNELS",
    "LABEL_CHANNEL",
    "MASK_CHANNEL",
    "BRATS_LABELS",
    "BRATS_LABEL_NAMES",
    "BRATS_LABEL_COLOURS",
    "NNUNET_FROM_BRATS",
    "parse_channels",
]

#: MR sequences and CT, in the order files and nnU-Net channel indices use.
IMAGE_CHANNELS: tuple[str, ...] = ("t1", "t1ce", "t2", "flair", "ct")
#: The tumour label map.
LABEL_CHANNEL = "seg"
#: A prepared case's brain mask (``<case>_mask.nii.gz``): beside the case, not a channel models learn.
MASK_CHANNEL = "mask"
ALL_CHANNELS: tuple[str, ...] = ("t1", "t1ce", "t2", "flair", "seg", "ct")

#: BraTS label codes: 1 necrotic core, 2 peritumoural oedema, 4 enhancing tumour.
BRATS_LABELS: dict[int, str] = {1: "NCR", 2: "ED", 4: "ET"}
BRATS_LABEL_NAMES: dict[int, str] = {
    1: "Necrotic tumour core",
    2: "Peritumoural oedema",
    4: "Enhancing tumour",
}
#: RGB in 0-1, the colours BraTS figures and Slicer users know (NCR green, ED yellow, ET red).
BRATS_LABEL_COLOURS: dict[int, tuple[float, float, float]] = {
    1: (0.0, 0.8, 0.0),
    2: (1.0, 0.85, 0.0),
    4: (0.9, 0.1, 0.1),
}
#: nnU-Net needs consecutive labels; its own BraTS conversion maps ED->1, NCR->2, ET->3.
NNUNET_FROM_BRATS: dict[int, int] = {0: 0, 2: 1, 1: 2, 4: 3}


def parse_channels(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Parse ``"t1,t2,seg"`` (or a list) into a tuple of known channel names, in canonical order.

    Raises ValueError with one sentence naming the unknown channel.
    """
    items = text.split(",") if isinstance(text, str) else list(text)
    names = [item.strip().lower() for item in items if item.strip()]
    if not names:
        raise ValueError("No channel given; choose from " + ", ".join(ALL_CHANNELS) + ".")
    for name in names:
        if name not in ALL_CHANNELS:
            raise ValueError(f"Unknown channel '{name}'; choose from " + ", ".join(ALL_CHANNELS) + ".")
    if len(set(names)) != len(names):
        raise ValueError("A channel is listed twice in '" + ",".join(names) + "'.")
    return tuple(c for c in ALL_CHANNELS if c in names)
