"""What a model can do, read from the engine's ``GET /models`` rows instead of lists of model kinds in the GUI.

Rows carry ``family``, ``kind`` and ``capabilities`` (``{"mask", "inpaint", "channel", "dims", ...}``), stated by each
model family's plugin. Rows from an engine that predates capabilities carry only ``kind``; for those the
capabilities are derived here, in this one place, from what such engines shipped (procedural, gan, diffusion, segmentation, translation).
"""

from __future__ import annotations

from typing import Any

__all__ = ["capabilities", "is_generator", "follows_masks", "is_trainable", "takes_option", "validity_summary", "validity_rank"]

#: Capabilities of the kinds engines without a ``capabilities`` field served (their diffusion models took masks).
_LEGACY = {
    "procedural": {"mask": False, "inpaint": False, "channel": None, "dims": 3, "trainable": False},
    "gan": {"mask": False, "inpaint": False, "channel": None, "dims": 3, "trainable": True},
    "diffusion": {"mask": True, "inpaint": True, "channel": None, "dims": 3, "trainable": True},
    "segmentation": {"mask": False, "inpaint": False, "channel": "seg", "dims": 3, "trainable": True},
    "translation": {"mask": False, "inpaint": False, "channel": "ct", "dims": 3, "trainable": True},
}


def capabilities(row: dict[str, Any]) -> dict[str, Any]:
    """The row's capabilities: as the engine states them, else derived from its ``kind`` (an older engine)."""
    stated = row.get("capabilities")
    if isinstance(stated, dict):
        return {"trainable": row.get("kind") != "procedural", **stated}
    legacy = _LEGACY.get(row.get("kind") or "")
    if legacy is not None:
        return dict(legacy)
    # An unknown kind from an old engine: not offered as a generator; a fine-tune may start from it, as before.
    return {"mask": False, "inpaint": False, "channel": row.get("channel") or row.get("kind"), "dims": 3, "trainable": True}


def is_generator(row: dict[str, Any]) -> bool:
    """Whether the model makes whole cases (the Generate section); channel models (seg, ct) do not."""
    return "error" not in row and not capabilities(row).get("channel")


def follows_masks(row: dict[str, Any]) -> bool:
    """Whether the model generates a case around a given tumour mask (the Tumour section)."""
    return is_generator(row) and bool(capabilities(row).get("mask"))


def is_trainable(row: dict[str, Any]) -> bool:
    """Whether a fine-tune can start from the model."""
    return "error" not in row and bool(capabilities(row).get("trainable"))


def takes_option(row: dict[str, Any], name: str) -> bool:
    """Whether the model's ``generate`` takes ``name`` (``truncation``, ``like``): the row's ``generate_options``,
    stated by its family's plugin; rows from older engines state none."""
    return "error" not in row and name in (row.get("generate_options") or [])


def validity_summary(row: dict[str, Any]) -> str:
    """One line of the model's validity row on the phantom benchmark (its card's ``metrics.validity``), or ""."""
    v = row.get("validity")
    if not isinstance(v, dict) or v.get("dice_ratio") is None:
        return ""
    ci = v.get("dice_ratio_ci") or [None, None]
    interval = f" [{ci[0]:.2f}, {ci[1]:.2f}]" if None not in ci else ""
    parts = [f"Dice ratio {v['dice_ratio']:.2f}{interval} (segmenter trained on it vs on real, U-Net)"]
    if v.get("precision") is not None and v.get("recall") is not None:
        parts.append(f"precision {v['precision']:.2f}, recall {v['recall']:.2f}")
    if v.get("ms_ssim_synthetic") is not None and v.get("ms_ssim_real") is not None:
        parts.append(f"MS-SSIM {v['ms_ssim_synthetic']:.2f} (real {v['ms_ssim_real']:.2f})")
    if v.get("memorised_fraction") is not None:
        parts.append(f"memorised {v['memorised_fraction']:.0%}")
    return "Validity on the phantom benchmark: " + "; ".join(parts) + "."


def validity_rank(row: dict[str, Any]) -> float:
    """Sort key for learned generators: the lower end of the Dice-ratio interval (unrated models last)."""
    v = row.get("validity")
    if not isinstance(v, dict):
        return float("inf")
    ci = v.get("dice_ratio_ci") or []
    low = ci[0] if ci and ci[0] is not None else v.get("dice_ratio")
    return -float(low) if low is not None else float("inf")
