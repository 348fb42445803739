"""``generate`` jobs: ``medsynth generate`` inside the engine, with the warm models (one at a time).

Preparation checks what needs no model (paths, device, layout and target folder); whether the model can make
the channels, grid or mask asked for is checked when the job starts, from its loaded plugin, before anything
is written, so a request never waits for weights to load. ``truncation`` and ``like`` are checked at submission
against what the model's family takes (the registry's ``generate_options``: the plugin class, not the weights) and ``like``'s case
files are read there, so a model that does not take them or a broken slice is a 4xx naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from ...errors import MedSynthError
from ...generate import MAX_CASES, GenerateRequest, generate_set
from ...journal import RunStopped
from ...setwriter import SetWriter
from ..inputs import check_case_files
from ..journalled import RESUMED_MESSAGE, SetProgress, resume_from_journal
from ..schema import MAX_SEED, ChannelList, DeviceName, JobParams, PathText, Triple
from ..spec import Conflict, JobKind, JobStopped, Missing, PrepareContext, Prepared, RunContext

__all__ = ["GenerateParams", "KIND"]


class GenerateParams(JobParams):
    """``medsynth generate``'s options; ``out`` defaults to the job's own folder."""

    model: str = Field("phantom", min_length=1, max_length=4096)
    n: int = Field(1, ge=1, le=MAX_CASES)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    channels: ChannelList = ["t1", "t1ce", "t2", "flair", "seg"]
    layout: Literal["brats", "nnunet"] = "brats"
    shape: Triple(int, ge=1, le=4096) = None
    spacing: Triple(float, gt=0, le=100) = None
    tumour: bool = True
    device: DeviceName | None = None
    out: PathText | None = None
    #: A tumour label map (BraTS codes) the generated case must follow; only mask-conditioned models take it.
    mask: PathText | None = None
    #: The mask is one drawn region (any non-zero voxel); the engine turns it into core, rim and oedema first.
    outline: bool = Field(False, description="The mask is one drawn region; it needs the mask (a Conflict without).")
    #: Continue the interrupted run into ``out`` from its journal / drop what it left and start afresh.
    resume: bool = False
    discard: bool = False
    #: A cohort: the path of a YAML/JSON cohort file, or the same document inline ({"strata": [...]}); replaces n.
    cohort: PathText | dict | None = None
    #: Balanced strata over n cases without a file: size, enhancing, hemisphere, tumour (comma-separated).
    balance: str | None = Field(None, min_length=1, max_length=200)
    #: StyleGAN truncation psi: 1 none, 0 every case the average image (models whose plugin takes it: stylegan2d).
    truncation: float = Field(1.0, ge=0.0, le=1.0, description="Truncation psi, 0 to 1 (1: none); stylegan2d models.")
    #: A case folder (one slice, or a volume) whose variations the cases are: projected into the model's W (stylegan2d).
    like: PathText | None = None


def _model_options(params: GenerateParams, model: str, ctx: PrepareContext) -> Path | None:
    """Refuse ``truncation``/``like`` for a model whose plugin does not take them; check ``like``'s case files."""
    asked = [name for name, on in (("truncation", params.truncation != 1.0), ("like", params.like is not None)) if on]
    if not asked:
        return None
    takes = ctx.generate_options(model) if ctx.generate_options else ()
    for name in asked:
        if name not in takes:
            raise Conflict(f"Model '{params.model}' does not take {name}; it is for stylegan2d models.")
    if params.like is None:
        return None
    like = ctx.policy.check(params.like, "like")
    if not like.is_dir():
        raise Missing(f"The 'like' case folder {like} does not exist; give a case folder (<case>_t1.nii.gz, ...) this engine may read.")
    from ...data.layouts import find_case_files
    from ...modelfile import read_card
    from ...weights import model_folder

    files = find_case_files(like)[1]
    folder = model_folder(model)
    if folder is not None:
        needed = list(read_card(folder).channels)
        missing = [c for c in needed if c not in files]
        if missing:
            raise Conflict(f"The 'like' case {like} has no {', '.join(missing)}; model '{params.model}' needs {', '.join(needed)}.")
    check_case_files(files.values())  # a broken file is a 4xx naming it
    return like


def prepare(params: GenerateParams, ctx: PrepareContext) -> Prepared:
    model = ctx.model_ref(params.model)
    out = ctx.path(params.out, "out") or ctx.job_dir / "output"
    mask = ctx.input_file(params.mask, "mask") if params.mask is not None else None
    if mask is None and params.outline:
        raise MedSynthError("'outline' describes a mask; give the mask too (or leave outline out).")
    like = _model_options(params, model, ctx)
    channels = tuple(params.channels)
    # checks layout, channels, target and leftovers of an interrupted run; writes nothing
    SetWriter(out, params.layout, channels, workers=1, resume=params.resume, discard=params.discard)
    stored = params.model_dump()
    stored.update(
        model=model, out=str(out), device=ctx.device(params.device), mask=str(mask) if mask else None, like=str(like) if like else None
    )
    if params.cohort is not None:  # stored as the parsed document: the job never rereads a file that may change
        from ...cohort.spec import parse_cohort, read_cohort

        cohort = read_cohort(ctx.policy.check(params.cohort, "cohort")) if isinstance(params.cohort, str) else parse_cohort(params.cohort)
        stored["cohort"] = cohort.to_dict()
    return Prepared(stored, out)


def run(params: dict[str, Any], ctx: RunContext) -> dict[str, Any]:
    mask = Path(params["mask"]) if params.get("mask") else None
    if mask is not None and params.get("outline"):
        from ..masks import outline_to_tumour

        ctx.log("Turning the drawn outline into a tumour (core, rim, oedema).")
        mask = outline_to_tumour(mask, ctx.job_dir / "tumour-mask.nii.gz")
    request = GenerateRequest(
        model=params["model"],
        n=params["n"],
        seed=params["seed"],
        out=Path(params["out"]),
        channels=tuple(params["channels"]),
        layout=params["layout"],
        shape=tuple(params["shape"]) if params["shape"] else None,
        spacing=tuple(params["spacing"]) if params["spacing"] else None,
        tumour=params["tumour"],
        device=params["device"],
        mask=mask,
        resume=bool(params.get("resume")),
        discard=bool(params.get("discard")),
        cohort=params.get("cohort"),
        balance=params.get("balance"),
        truncation=params.get("truncation", 1.0),
        like=Path(params["like"]) if params.get("like") else None,
    )
    progress = SetProgress(ctx, timed=True)
    if len(ctx.devices) > 1 and request.n > 1 and request.cohort is None and request.balance is None:
        out = _sharded(request, ctx, progress)
    else:
        out = generate_set(request, ctx.models, progress=progress, resumed=progress.resumed)
    ctx.log(f"Wrote {request.n} case(s) to {request.out}.")
    return {"output_dir": str(out), "cases": request.n}


def _sharded(request: GenerateRequest, ctx: RunContext, progress: SetProgress) -> Path:
    """The engine's ``--gpus``: one worker process per device, as ``medsynth generate --nproc`` runs them."""
    from ...launch import run_workers

    ctx.log(f"Sharing {request.n} cases over {len(ctx.devices)} worker processes ({', '.join(ctx.devices)}).")
    try:
        return run_workers(request, ctx.devices, progress=progress, stopped=ctx.stopped, resumed=progress.resumed)
    except RunStopped:
        raise JobStopped from None


KIND = JobKind(
    name="generate",
    params=GenerateParams,
    prepare=prepare,
    run=run,
    summary="Generate a synthetic set (cases of multi-sequence MRI with tumour labels) with a model.",
    runs_in="engine",
    resume=resume_from_journal,
    requeue_on_restart=True,
    resumed_message=RESUMED_MESSAGE,
)
