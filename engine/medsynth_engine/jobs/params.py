"""The parameters each job kind takes, named as the ``medsynth`` command's options, checked on submission.

Unknown names and wrong types are refused with one sentence (HTTP 422), so a typo never silently becomes
a default.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..generate import MAX_CASES

__all__ = [
    "GenerateParams", "FinetuneParams", "ExportParams", "AddChannelParams", "AddTumourParams", "ProgressParams", "validation_sentence",
]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), strict=False)


def _triple(value, kind: type, what: str):
    if value is None:
        return None
    values = [value] * 3 if isinstance(value, int | float) else list(value)
    if len(values) != 3:
        raise ValueError(f"{what} needs one number or three (X, Y, Z)")
    return [kind(v) for v in values]


class GenerateParams(_Params):
    """``medsynth generate``'s options; ``out`` defaults to the job's own folder."""

    model: str = Field("phantom", min_length=1, max_length=4096)
    n: int = Field(1, ge=1, le=MAX_CASES)
    seed: int = Field(0, ge=0, lt=2**63)
    channels: str | list[str] = "t1,t1ce,t2,flair,seg"
    layout: Literal["brats", "nnunet"] = "brats"
    shape: int | list[int] | None = None
    spacing: float | list[float] | None = None
    tumour: bool = True
    device: str | None = Field(None, max_length=64)
    out: str | None = Field(None, min_length=1, max_length=4096)
    #: A tumour label map (BraTS codes) the generated case must follow; only mask-conditioned models take it.
    mask: str | None = Field(None, min_length=1, max_length=4096)
    #: The mask is one drawn region (any non-zero voxel); the engine turns it into core, rim and oedema first.
    outline: bool = False
    #: A cohort: the path of a YAML/JSON cohort file, or the same document inline ({"strata": [...]}); replaces n.
    cohort: str | dict | None = None
    #: Balanced strata over n cases without a file: size, enhancing, hemisphere, tumour (comma-separated).
    balance: str | None = Field(None, min_length=1, max_length=200)

    @field_validator("shape")
    @classmethod
    def _shape(cls, value):
        values = _triple(value, int, "shape")
        if values is not None and not all(1 <= v <= 4096 for v in values):
            raise ValueError("each side must be 1 to 4096 voxels")
        return values

    @field_validator("spacing")
    @classmethod
    def _spacing(cls, value):
        values = _triple(value, float, "spacing")
        if values is not None and not all(0 < v <= 100 for v in values):
            raise ValueError("each spacing must be above 0 and at most 100 mm")
        return values


class FinetuneParams(_Params):
    """``medsynth finetune``'s options (the ``FinetuneRequest`` fields); unset ones take its defaults."""

    model: str = Field(min_length=1, max_length=4096)
    data: str = Field(min_length=1, max_length=4096)
    out: str | None = Field(None, min_length=1, max_length=4096)
    channels: str | list[str] | None = None
    resolution: int | None = Field(None, ge=4, le=1024)
    steps: int | None = Field(None, ge=1, le=10_000_000)
    batch_size: int | None = Field(None, ge=1, le=4096)
    resume: bool = False
    nproc: int | None = Field(None, ge=1, le=64)
    skip_bad: bool | None = None
    device: str | None = Field(None, max_length=64)
    checkpoint_every: int | None = Field(None, ge=1, le=10_000_000)
    freeze_stages: int | None = Field(None, ge=0, le=64)
    seed: int | None = Field(None, ge=0, lt=2**62)
    spacing: float | None = Field(None, gt=0, le=100)
    width: int | None = Field(None, ge=1, le=4096)
    augment: bool | None = None
    amp: bool | None = None
    grad_checkpoint: bool | None = None
    log_every: int | None = Field(None, ge=1, le=10_000_000)
    description: str | None = Field(None, max_length=4000)
    licence: str | None = Field(None, max_length=1000)
    stage: str | None = Field(None, min_length=1, max_length=64)
    latent_downsample: int | None = Field(None, ge=1, le=64)


class ExportParams(_Params):
    """Re-write a set (``source`` folder, or the output of job ``job``) in another layout or channel subset."""

    source: str | None = Field(None, min_length=1, max_length=4096)
    job: str | None = Field(None, min_length=1, max_length=64)
    out: str | None = Field(None, min_length=1, max_length=4096)
    layout: Literal["brats", "nnunet"] = "brats"
    channels: str | list[str] | None = None
    audit_against: str | None = Field(None, min_length=1, max_length=4096)
    audit_threshold: float = Field(0.5, gt=0.0, le=1.0)


class AddChannelParams(_Params):
    """``medsynth add-channel``'s options (the ``AddChannelRequest`` fields): add ``channel`` to the case ``case``."""

    case: str = Field(min_length=1, max_length=4096)
    channel: Literal["seg", "ct"]
    model: str | None = Field(None, min_length=1, max_length=4096)
    out: str | None = Field(None, min_length=1, max_length=4096)
    replace: bool = False
    device: str | None = Field(None, max_length=64)
    amp: bool | None = None


class AddTumourParams(_Params):
    """``medsynth add-tumour``'s options (the ``AddTumourRequest`` fields) plus ``outline``.

    ``outline``: the mask is one drawn region (any non-zero voxel), not BraTS codes; the engine turns it into a
    tumour (necrotic core, enhancing rim, oedema) with ``tumour.structure_from_outline`` before adding it, so the
    Slicer side never needs torch or the engine package. ``out`` defaults to the job's own folder.
    """

    case: str = Field(min_length=1, max_length=4096)
    mask: str = Field(min_length=1, max_length=4096)
    out: str | None = Field(None, min_length=1, max_length=4096)
    model: str = Field("ldm3d-phantom", min_length=1, max_length=4096)
    seed: int = Field(0, ge=0, lt=2**62)
    margin_mm: float = Field(8.0, gt=0, le=50)
    steps: int | None = Field(None, ge=1, le=1000)
    device: str | None = Field(None, max_length=64)
    outline: bool = False


class ProgressParams(_Params):
    """``medsynth progress``'s options (the ``ProgressRequest`` fields); ``out`` defaults to the job's own folder."""

    case: str = Field(min_length=1, max_length=4096)
    model: Literal["growth", "atrophy"]
    months: list[float] = Field(default_factory=lambda: [0.0, 3.0, 6.0, 12.0], min_length=1, max_length=100)
    out: str | None = Field(None, min_length=1, max_length=4096)
    seed_point: list[float] | None = Field(None, min_length=3, max_length=3)
    d_grey: float = Field(0.13, ge=0.005, le=2.0)
    white_grey_ratio: float = Field(5.0, ge=1.0, le=100.0)
    rho: float = Field(0.012, ge=0.001, le=0.2)
    mass_effect: float = Field(0.5, ge=0.0, le=1.0)
    profile: Literal["ageing", "alzheimer"] = "alzheimer"
    rate: dict[str, float] = Field(default_factory=dict)
    margin_mm: float = Field(8.0, ge=1.0, le=50.0)
    seed: int = Field(0, ge=0, lt=2**62)


def validation_sentence(exc: ValidationError, what: str = "parameter") -> str:
    """One sentence for the first problem pydantic found."""
    error = exc.errors()[0]
    loc = ".".join(str(p) for p in error.get("loc", ()) if not isinstance(p, int)) or "body"
    if error.get("type") == "extra_forbidden":
        return f"Unknown {what} '{loc}'; check its spelling against the documented names."
    if error.get("type") == "missing":
        return f"The {what} '{loc}' is required."
    message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    return f"The {what} '{loc}' is not valid: {message}."
