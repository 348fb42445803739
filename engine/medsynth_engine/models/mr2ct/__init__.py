"""``mr2ct``: a CT channel in Hounsfield units from T1 alone (or with t1ce, t2, flair when present)."""

from pathlib import Path

__all__ = ["SHIPPED_ID", "shipped_folder"]

SHIPPED_ID = "mr2ct-phantom"


def shipped_folder() -> Path:
    return Path(__file__).resolve().parents[2] / "weights" / SHIPPED_ID
