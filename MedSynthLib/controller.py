"""What the MedSynth panel knows and decides, in plain Python, shared by the Slicer module and ``medsynth-studio``.

The two front ends only draw: they turn widget values into calls on :class:`PanelController`, call
:meth:`PanelController.poll` from a worker thread (:mod:`MedSynthLib.background`), and show
:meth:`PanelController.view` (texts, progress, which buttons are enabled and why). Everything here is standard
library only, so it runs in Slicer's Python and is testable without any GUI. Inputs are checked in
:mod:`MedSynthLib.requests`, engine state lives in :mod:`MedSynthLib.session`, results are read by
:mod:`MedSynthLib.results`; the names below are re-exported for scripts written against the single module.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client import TERMINAL_STATES, EngineClient, EngineError
from .i18n import _
from .jobschema import SchemaError, check_params
from .modelrows import follows_masks, is_generator, is_trainable, takes_option, validity_rank, validity_summary
from .requests import (
    CHANNEL_TOOLS,
    InputError,
    input_case_name,
    validate_add_channel,
    validate_export,
    validate_finetune,
    validate_generate,
    validate_tumour,
)
from .results import (
    LossLog,
    default_cache_dir,
    download_result,
    first_case_dir,
    latest_mosaic,
    loss_series,
    read_loss_log,
    result_to_load,
)
from .session import EngineSession, JobTracker, allow_dir_args

__all__ = [
    "InputError",
    "EngineSession",
    "JobTracker",
    "PanelController",
    "PanelView",
    "validate_generate",
    "validate_finetune",
    "validate_export",
    "first_case_dir",
    "latest_mosaic",
    "read_loss_log",
    "CHANNEL_TOOLS",
    "TUMOUR_MODEL",
    "loss_series",
    "input_case_name",
    "result_to_load",
    "validate_add_channel",
    "validate_tumour",
    "BUTTON_ACTIONS",
]

#: The mask-conditioned model the Tumour section uses unless another is chosen (ldm3d, latent diffusion).
TUMOUR_MODEL = "ldm3d-phantom"
#: The embedded default model comes first in the panel's list; the rest follow in the engine's order.
DEFAULT_MODEL = "phantom"
#: The .ui's buttons and the :attr:`PanelView.enabled` / ``reasons`` key each one follows (Slicer module and studio).
BUTTON_ACTIONS = {
    "generateButton": "generate", "finetuneButton": "finetune", "exportButton": "export", "cancelButton": "cancel",
    "resumeButton": "resume", "startEngineButton": "start_engine", "connectButton": "start_engine",
    "stopEngineButton": "stop_engine", "addSegButton": "add_seg", "addCtButton": "add_ct",
    "tumourGenerateButton": "tumour_generate", "tumourAddButton": "tumour_add", "prepareButton": "prepare",
}


@dataclass
class PanelView:
    """Everything the front ends show: status texts, progress and, per button, enabled or not (and why not)."""

    engine_status: str
    job_status: str
    progress: int  # 0-100
    enabled: dict[str, bool]
    reasons: dict[str, str]
    error: str = ""

    def section_status(self, *keys: str) -> str:
        """What a section's buttons lack, each reason once (the Channels and Tumour sections' status lines)."""
        return "\n".join(dict.fromkeys(self.reasons[key] for key in keys if self.reasons[key]))


class PanelController:
    """Holds the panel's state and turns user actions into engine jobs; the front ends call it and draw its view."""

    def __init__(self, session: EngineSession | None = None) -> None:
        self.session = session or EngineSession()
        self.tracker = JobTracker()
        self.models: list[dict[str, Any]] = []
        self.error = ""
        self.last_generate_job: str | None = None
        self.finished: dict[str, Any] | None = None  # a job that ended since the front end last asked
        self.finetune_options: dict[str, Any] = {}
        self.channel_models: list[dict[str, Any]] = []
        #: Each job kind's params schema, as the connected engine serves it (empty for an older engine).
        self.job_kinds: dict[str, Any] = {}
        #: Where results of an engine connected by URL are downloaded to be shown (MedSynthLib.results).
        self.cache_dir: Path = default_cache_dir()
        #: Where the panel saves volumes and drawn masks for the engine to read (a folder the engine may use).
        self.work_dir: Path | None = None
        self._loss_log: LossLog | None = None

    # -- actions (each returns nothing or the job; raises InputError/EngineError with one sentence) --------

    def start_engine(self, python: str, state_dir: str, device: str | None = None,
                     env: dict[str, str] | None = None, allowed_dirs: tuple[str, ...] = ()) -> dict[str, Any]:
        """Start a local engine; ``allowed_dirs`` are data folders it may use besides the home and its state folder."""
        extra = allow_dir_args(allowed_dirs)
        health = self._connected(self.session.start_local(python, state_dir, device, extra_args=extra, env=env))
        self.work_dir = Path(state_dir).expanduser().absolute() / "panel-inputs"  # the state folder is always allowed
        return health

    def connect(self, url: str, token: str | None = None, token_file: str | None = None,
                credential: str | None = None) -> dict[str, Any]:
        """Connect by URL; ``credential`` is what the panel's token field holds: a token file's path, or the token."""
        if credential and credential.strip():
            text = credential.strip()
            if Path(text).expanduser().is_file():
                token_file = text
            else:
                token = text
        health = self._connected(self.session.connect(url, token, token_file))
        self.work_dir = Path.home() / ".medsynth" / "panel-inputs"  # the home folder is allowed unless --allow-dir says otherwise
        return health

    def _connected(self, health: dict[str, Any]) -> dict[str, Any]:
        self.error = ""
        models = self._client().models()
        self.models = sorted(models, key=lambda m: m.get("id") != DEFAULT_MODEL)
        try:
            self.channel_models = [m for m in self._client().channel_models() if m.get("channel")]
        except EngineError as exc:
            if exc.status != 404:  # an engine from before add-channel jobs has no such endpoint
                raise
            self.channel_models = []
        try:
            self.job_kinds = self._client().job_kinds().get("kinds") or {}
        except EngineError as exc:
            if exc.status != 404:  # an older engine serves no schemas; it still checks every request itself
                raise
            self.job_kinds = {}
        return health

    def param_limit(self, kind: str, name: str, keyword: str) -> float | None:
        """A limit (``minimum``, ``maximum``...) of one param in the engine's schema, for the panel's spin boxes."""
        schema = ((self.job_kinds.get(kind) or {}).get("params_schema") or {}).get("properties", {}).get(name, {})
        for option in [schema, *schema.get("anyOf", [])]:
            if keyword in option:
                return option[keyword]
        return None

    def generators(self) -> list[str]:
        """Models the Generate section offers; channel models are not generators.

        The engine's default (the procedural phantom) stays first; learned generators follow, best validity first
        (the lower end of their benchmark Dice-ratio interval), so the best learned model is the learned default.
        """
        rows = [m for m in self.models if is_generator(m)]
        procedural = [m for m in rows if m.get("kind") == "procedural"]
        learned = sorted((m for m in rows if m.get("kind") != "procedural"), key=validity_rank)
        return [m["id"] for m in procedural + learned]

    def validity_text(self, model_id: str) -> str:
        """The model's validity row on the phantom benchmark in one line (shown under the model choice), or ""."""
        return next((validity_summary(m) for m in self.models if m.get("id") == model_id), "")

    def takes_truncation(self, model_id: str) -> bool:
        """Whether the Generate section offers truncation for this model (its row says its plugin takes it)."""
        return any(takes_option(m, "truncation") for m in self.models if m.get("id") == model_id)

    def spin_box_maxima(self) -> dict[str, int]:
        """The .ui's spin boxes and the engine's upper limits for them (``GET /job-kinds``), where it states one."""
        limits = {"countSpinBox": ("generate", "n"), "stepsSpinBox": ("finetune", "steps")}
        found = {box: self.param_limit(kind, name, "maximum") for box, (kind, name) in limits.items()}
        return {box: int(value) for box, value in found.items() if value is not None}

    def model_choices(self) -> dict[str, list[str]]:
        """Each model combo box of the .ui and the models it offers now."""
        bases = self.finetune_bases() if self.session.connected else []
        return {"modelComboBox": self.generators(), "baseModelComboBox": bases, "tumourModelComboBox": self.tumour_models()}

    def tumour_models(self) -> list[str]:
        """Mask-conditioned models for the Tumour section (their rows' ``mask`` capability), the shipped default first."""
        ids = [m["id"] for m in self.models if follows_masks(m)]
        return sorted(ids, key=lambda i: i != TUMOUR_MODEL)

    def finetune_bases(self) -> list[str]:
        """Models a fine-tune can start from: the engine's trainable models, GANs first (one training stage, the
        shortest path to a model of one's own data), else the pgan3d architecture (from scratch)."""
        trainable = [m for m in self.models if is_trainable(m)]
        trainable.sort(key=lambda m: m.get("kind") != "gan")  # stable: the engine's order within each group
        return [m["id"] for m in trainable] or ["pgan3d"]

    def stop_engine(self, force: bool = False) -> bool:
        """Stop the engine unless a job runs (``force`` stops it anyway); returns whether it was stopped."""
        if self.tracker.active and not force:
            return False
        self.session.stop()
        self.models, self.channel_models = [], []
        return True

    def generate(self, *, voxel_size: float | None = None, truncation: float | None = None, **inputs: Any) -> dict[str, Any]:
        """Submit a generate job; ``voxel_size`` (mm) keeps the model's field of view at a coarser or finer grid;
        ``truncation`` is sent only for a model that takes it (the field is hidden for the others)."""
        if voxel_size:
            inputs.update(self.grid_for(inputs.get("model", ""), float(voxel_size)))
        if truncation is not None and self.takes_truncation(inputs.get("model", "")):
            inputs["truncation"] = truncation
        return self._submit("generate", validate_generate(**inputs))

    def grid_for(self, model_id: str, voxel_size: float) -> dict[str, Any]:
        """Shape and spacing that cover the model's field of view with cubic voxels of ``voxel_size`` mm (3D models)."""
        if not 0.5 <= voxel_size <= 16:
            raise InputError(_("Voxel size {size} mm is out of range; choose between 0.5 and 16 mm.").format(size=f"{voxel_size:g}"))
        card = next((m for m in self.models if m.get("id") == model_id), None)
        if not card or not card.get("shape") or not card.get("spacing") or len(card["shape"]) != 3:
            return {}  # a 2D model makes slices on its own grid: a voxel size does not apply
        field_mm = [n * s for n, s in zip(card["shape"], card["spacing"])]
        return {"shape": [max(8, round(f / voxel_size)) for f in field_mm], "spacing": voxel_size}

    def progress(self, **params: Any) -> dict[str, Any]:
        """Submit a ``progress`` job (a longitudinal series of one case; params from MedSynthLib.progressionpanel)."""
        return self._submit("progress", params)

    def finetune(self, **inputs: Any) -> dict[str, Any]:
        """Submit a fine-tune; ``finetune_options`` adds advanced FinetuneRequest fields (resolution, batch_size...)."""
        return self._submit("finetune", {**validate_finetune(**inputs), **self.finetune_options})

    def export(self, **inputs: Any) -> dict[str, Any]:
        if "job" not in inputs and "source" not in inputs:
            inputs["job"] = self.last_generate_job
        return self._submit("export", validate_export(**inputs))

    def prepare(self, **inputs: Any) -> dict[str, Any]:
        """Submit a prepare job (hospital DICOM or NIfTI in, BraTS-ready cases out; MedSynthLib.prepare_section)."""
        from .prepare_section import validate_prepare

        return self._submit("prepare", validate_prepare(**inputs))

    def cancel(self) -> dict[str, Any]:
        if not self.tracker.active:
            raise InputError(_("No job is running; there is nothing to cancel."))
        job = self._client().cancel(self.tracker.job["id"])
        self.tracker.update(job)
        return job

    def resumable(self, kind: str | None) -> bool:
        """Whether the engine resumes jobs of ``kind`` (its ``GET /job-kinds`` says so; an older engine: fine-tunes)."""
        if not self.job_kinds:
            return kind == "finetune"
        return bool((self.job_kinds.get(kind) or {}).get("resumable"))

    def resume(self) -> dict[str, Any]:
        job = self.tracker.job
        if not job or not self.resumable(job.get("kind")) or job.get("state") not in ("cancelled", "interrupted"):
            raise InputError(_("Only a cancelled or interrupted job of a kind that resumes (fine-tune, generate, export) can be resumed."))
        job = self._client().resume(job["id"])
        self.tracker.update(job)
        self.tracker.lost = ""
        return job

    def channel_tool_reason(self, channel: str, volume_name: str | None) -> str:
        """Why adding ``channel`` (seg or ct) to ``volume_name`` cannot start now; empty when it can."""
        tool = CHANNEL_TOOLS[channel]
        if not self.session.connected:
            return _("Adding a {tool} needs the engine; start or connect it first.").format(tool=tool["label"])
        if not volume_name:
            return _("Adding a {tool} needs a loaded volume; generate a case or load one first.").format(tool=tool["label"])
        if not any(m.get("channel") == channel for m in self.channel_models):
            return _("Adding a {tool} needs a {channel} model, which this engine does not have; update the engine.").format(
                tool=tool["label"], channel=channel)
        if self.tracker.active:
            return self._running_reason()
        return ""

    def input_folder(self, volume_name: str) -> Path:
        """A new case folder under the work folder to save ``volume_name`` (or a drawn mask) in for the engine."""
        if self.work_dir is None:
            raise InputError(_("The engine is not running; start it or connect to it first."))
        parent = self.work_dir / secrets.token_hex(4)
        parent.mkdir(parents=True, exist_ok=True)
        return parent / input_case_name(volume_name)

    def add_channel(self, channel: str, case_dir: str | os.PathLike, model: str | None = None) -> dict[str, Any]:
        """Submit an add-channel job for a case folder the front end saved (see :meth:`input_folder`)."""
        reason = self.channel_tool_reason(channel, Path(case_dir).name)
        if reason:
            raise InputError(reason)
        return self._submit("add-channel", validate_add_channel(channel=channel, case_dir=case_dir, model=model))

    def tumour_reason(self, action: str, segment: str | None, volume_name: str | None = None) -> str:
        """Why the Tumour section's ``generate`` or ``add`` cannot start now; empty when it can."""
        if not self.session.connected:
            return _("Drawing a tumour into a case needs the engine; start or connect it first.")
        if not self.tumour_models():
            return _("This engine has no mask-conditioned model (ldm3d); update the engine.")
        if not segment:
            return _("Draw the tumour first (a segment in Slicer's Segment Editor, or the studio's brush) and select it.")
        if action == "add" and not volume_name:
            return _("Select the case to add the tumour to (a loaded volume).")
        if self.tracker.active:
            return self._running_reason()
        return ""

    def add_tumour(self, *, case_dir: str | os.PathLike, mask: str | os.PathLike, outline: bool, model: str,
                   seed: int = 0, margin_mm: float | None = None, steps: int | None = None) -> dict[str, Any]:
        """Submit an add-tumour job: the tumour in ``mask`` into the saved case; the result is a new case folder."""
        params = validate_tumour(mask=mask, outline=outline, seed=seed, model=model, margin_mm=margin_mm,
                                 case_dir=case_dir, steps=steps)
        return self._submit("add-tumour", params)

    def generate_with_tumour(self, *, mask: str | os.PathLike, outline: bool, model: str, seed: int = 0) -> dict[str, Any]:
        """Submit a generate job whose one new case has the tumour in ``mask`` (a mask-conditioned model)."""
        return self._submit("generate", validate_tumour(mask=mask, outline=outline, seed=seed, model=model))

    def _submit(self, kind: str, params: dict[str, Any]) -> dict[str, Any]:
        if self.tracker.active:
            raise InputError(_("A {kind} job is still running; wait for it or cancel it first.").format(kind=self.tracker.kind))
        try:
            check_params(kind, params, self.job_kinds)  # the engine's own limits (GET /job-kinds), not a copy
        except SchemaError as exc:
            raise InputError(str(exc)) from None
        job = self._client().submit(kind, params)
        self.error = ""
        self.tracker.follow(job)
        self._loss_log = None
        if kind == "generate":
            self.last_generate_job = None
        return job

    def _client(self) -> EngineClient:
        if not self.session.connected:
            raise InputError(_("The engine is not running; start it or connect to it first."))
        return self.session.client

    # -- polling ----------------------------------------------------------------------------------------

    def poll(self) -> dict[str, Any] | None:
        """One timer tick: refresh the followed job. A job that just ended is kept in ``finished`` for the front end."""
        tracker = self.tracker
        if not tracker.active:
            return tracker.job
        if not self.session.alive():
            self._lose(_("The engine process stopped"))
            return tracker.job
        try:
            job = self._client().job(tracker.job["id"])
        except EngineError as exc:
            if exc.status is None:
                self._lose(_("The engine stopped answering"))
                return tracker.job
            raise
        tracker.update(job)
        if job["kind"] == "finetune" and job.get("output_dir"):
            log = Path(job["output_dir"]) / "loss.jsonl"  # every step, not only the polled ones
            if self._loss_log is None or self._loss_log.path != log:
                self._loss_log = LossLog(log)
            rows = self._loss_log.read_new()
            if rows or tracker.from_log:
                tracker.add_logged(rows)
        if job["state"] in TERMINAL_STATES:
            if job["state"] == "succeeded" and self.session.process is None and job["kind"] != "finetune":
                # An engine connected by URL may be on another machine: show what it made from a local copy.
                job = download_result(self._client(), job, self.cache_dir)
                tracker.update(job)
            self.finished = job
            if job["state"] == "succeeded" and job["kind"] == "generate":
                self.last_generate_job = job["id"]
            if job["state"] == "failed":
                self.error = job.get("error") or _("The {kind} job failed.").format(kind=job["kind"])
        return job

    def _lose(self, what: str) -> None:
        kind = self.tracker.kind or "running"
        self.tracker.lost = (
            _("{what} during the {kind} job; start the engine again (finished results are kept, a fine-tune can be "
              "resumed).").format(what=what, kind=kind)
        )
        self.error = self.tracker.lost
        if self.session.process is not None and not self.session.process.alive():
            self.session.stop()
        else:
            self.session.client = None
        self.models, self.channel_models = [], []

    def _running_reason(self) -> str:
        return _("A {kind} job is running; wait for it or cancel it.").format(kind=self.tracker.kind)

    def take_finished(self) -> dict[str, Any] | None:
        """The job that ended since the last call (once), so the front end loads or shows its result once."""
        job, self.finished = self.finished, None
        return job

    # -- view -------------------------------------------------------------------------------------------

    def view(self, inputs: dict[str, Any] | None = None) -> PanelView:
        """Texts, progress and enablement for the current state.

        ``inputs``: ``volume`` (the name of the volume selected for Channels), ``segment`` (the drawn tumour
        selected in the Tumour section) and ``case`` (the volume the tumour is added to; default ``volume``).
        """
        inputs = inputs or {}
        connected = self.session.connected
        busy = self.tracker.active
        if connected:
            device = self.session.health.get("device", "?")
            version = self.session.health.get("version", "?")
            where = _("started here") if self.session.process is not None else self.session.client.url
            engine_status = _("Engine {version} running on {device} ({where}).").format(version=version, device=device, where=where)
        else:
            engine_status = _("Engine not running.")
        job = self.tracker.job
        if self.tracker.lost:
            job_status, progress = self.tracker.lost, int(round(100 * float(job.get("progress") or 0)))
        elif job:
            message = job.get("error") if job.get("state") == "failed" else job.get("message")
            state = _("{kind} job {state}").format(kind=job["kind"].capitalize(), state=job["state"])
            job_status = _("{state}: {message}").format(state=state, message=message) if message else state + "."
            progress = int(round(100 * float(job.get("progress") or 0)))
        else:
            job_status, progress = _("No job yet."), 0
        reasons: dict[str, str] = {}
        not_connected = _("Start or connect the engine first.")
        running = self._running_reason()
        for name in ("generate", "finetune", "export", "prepare"):
            reasons[name] = not_connected if not connected else running if busy else ""
        if not reasons["export"] and not self.last_generate_job:
            reasons["export"] = _("Generate a set first; export re-writes it as an anonymised set.")
        reasons["cancel"] = "" if busy else _("No job is running.")
        can_resume = bool(job) and self.resumable(job.get("kind")) and job.get("state") in ("cancelled", "interrupted")
        reasons["resume"] = "" if (can_resume and connected and not busy) else _(
            "Only a stopped fine-tune, generate or export can be resumed.")
        reasons["start_engine"] = _("The engine is already connected.") if connected else ""
        reasons["stop_engine"] = "" if connected else _("The engine is not running.")
        volume = inputs.get("volume")
        for channel in CHANNEL_TOOLS:
            reasons[f"add_{channel}"] = self.channel_tool_reason(channel, volume)
        for action in ("generate", "add"):
            reasons[f"tumour_{action}"] = self.tumour_reason(action, inputs.get("segment"), inputs.get("case", volume))
        enabled = {name: not reason for name, reason in reasons.items()}
        return PanelView(engine_status, job_status, progress, enabled, reasons, self.error)


