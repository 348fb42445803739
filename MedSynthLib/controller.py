"""What the MedSynth panel knows and decides, in plain Python, shared by the Slicer module and ``medsynth-studio``.

The two front ends only draw: they turn widget values into calls on :class:`PanelController`, call
:meth:`PanelController.poll` from a timer, and show :meth:`PanelController.view` (texts, progress, which buttons
are enabled and why). Everything here is standard library only, so it runs in Slicer's Python and is testable
without any GUI. Network calls use short timeouts so a timer tick never freezes the GUI for long.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .client import TERMINAL_STATES, EngineClient, EngineError
from .conventions import parse_channels

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
]

#: The "add a channel" tools of the Channels section: what each adds (the engine's add-channel models make them).
CHANNEL_TOOLS: dict[str, dict[str, str]] = {
    "seg": {"label": "segmentation"},
    "ct": {"label": "CT channel"},
}
#: The mask-conditioned model the Tumour section uses unless another is chosen (ldm3d, latent diffusion).
TUMOUR_MODEL = "ldm3d-phantom"
#: Model kinds that generate cases (the Generate section lists these; channel models do not generate).
GENERATOR_KINDS = ("procedural", "gan", "diffusion")
_ACTIVE_STATES = ("queued", "running")
#: The embedded default model comes first in the panel's list; the rest follow in the engine's order.
DEFAULT_MODEL = "phantom"
_MOSAIC = re.compile(r"mosaic_step(\d+)\.png$")


class InputError(ValueError):
    """A panel input that cannot be used, said in one sentence that says what to change."""


# -- validation -------------------------------------------------------------------------------------------


def _channels(text: str | list[str] | tuple[str, ...]) -> list[str]:
    try:
        return list(parse_channels(text))
    except ValueError as exc:
        raise InputError(str(exc)) from None


def validate_generate(
    *, model: str, count: int, seed: int, channels: str | list[str], tumour: bool, shape: int | list[int] | None = None,
    spacing: float | None = None,
) -> dict[str, Any]:
    """Parameters of a ``generate`` job (BraTS layout, so the first case can be loaded), or an InputError."""
    if not model:
        raise InputError("No model is selected; connect to the engine and pick a model.")
    if not 1 <= int(count) <= 10_000:
        raise InputError(f"Count {count} is out of range; generate between 1 and 10000 cases.")
    if int(seed) < 0:
        raise InputError("The seed must be zero or positive.")
    params: dict[str, Any] = {
        "model": model, "n": int(count), "seed": int(seed), "channels": _channels(channels),
        "layout": "brats", "tumour": bool(tumour),
    }
    if shape:
        params["shape"] = [int(n) for n in shape] if isinstance(shape, (list, tuple)) else int(shape)
    if spacing:
        params["spacing"] = float(spacing)
    return params


def _case_folders(data: Path) -> list[Path]:
    """Sub-folders that hold at least one NIfTI file (a BraTS-style case)."""
    folders = []
    for child in sorted(data.iterdir()):
        if child.is_dir() and any(p.name.endswith((".nii.gz", ".nii")) for p in child.iterdir()):
            folders.append(child)
    return folders


def validate_finetune(
    *, data: str | os.PathLike, model: str, channels: str | list[str], steps: int, out: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Parameters of a ``finetune`` job; the data folder must hold BraTS-style case folders."""
    if not str(data).strip():
        raise InputError("No data folder is chosen; pick a BraTS-style folder with one sub-folder per case.")
    folder = Path(data).expanduser()
    if not folder.is_dir():
        raise InputError(f"The data folder {folder} does not exist; pick a BraTS-style folder with one sub-folder per case.")
    try:
        cases = _case_folders(folder)
    except PermissionError:
        raise InputError(f"The data folder {folder} cannot be read; check its permissions.") from None
    if not cases:
        raise InputError(
            f"The data folder {folder} holds no case folders with NIfTI files; pick a BraTS-style folder "
            "(<case>/<case>_t1.nii.gz, ...)."
        )
    if not model:
        raise InputError("No base model is selected; pick the model to fine-tune.")
    if not 1 <= int(steps) <= 10_000_000:
        raise InputError(f"Steps {steps} is out of range; choose at least 1 step.")
    params: dict[str, Any] = {"model": model, "data": str(folder.absolute()), "steps": int(steps), "channels": _channels(channels)}
    if out is not None and str(out).strip():
        params["out"] = str(_writable_new_folder(Path(out).expanduser(), "model"))
    return params


def _writable_new_folder(out: Path, what: str) -> Path:
    out = out.absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"The {what} folder {out} is not empty; choose a new folder (nothing is overwritten).")
    parent = out.parent
    if not parent.is_dir():
        raise InputError(f"The folder {parent} does not exist; create it or choose another {what} folder.")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"Cannot write into {parent}; choose a {what} folder you may write to.")
    return out


def validate_export(
    *, out: str | os.PathLike, layout: str, channels: str | list[str], job: str | None = None,
    source: str | os.PathLike | None = None, audit_against: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Parameters of an ``export`` job re-writing a generated set (a job's output or a set folder) into ``out``.

    ``audit_against`` (a training folder) turns on the export gate: the engine audits the set against it and
    leaves probable copies of training cases out before the set appears.
    """
    if not str(out).strip():
        raise InputError("No export folder is chosen; pick a new, empty folder.")
    if layout not in ("brats", "nnunet"):
        raise InputError(f"Unknown layout '{layout}'; choose brats or nnunet.")
    if not job and not (source and str(source).strip()):
        raise InputError("There is nothing to export yet; generate a set first (or choose a set folder).")
    params: dict[str, Any] = {"out": str(_writable_new_folder(Path(out).expanduser(), "export")), "layout": layout}
    params["channels"] = _channels(channels)
    if job:
        params["job"] = job
    else:
        params["source"] = str(Path(source).expanduser().absolute())
    if audit_against is not None and str(audit_against).strip():
        train = Path(audit_against).expanduser().absolute()
        if not train.is_dir():
            raise InputError(f"The training folder to audit against, {train}, does not exist; choose the folder the model learned from.")
        params["audit_against"] = str(train)
    return params


def input_case_name(volume_name: str) -> str:
    """A case id for a volume the panel saves for the engine: its name without a trailing channel word, file-safe."""
    words = volume_name.strip().split()
    if len(words) > 1 and words[-1].lower() in ("t1", "t1ce", "t2", "flair", "ct", "seg"):
        words = words[:-1]
    return re.sub(r"[^A-Za-z0-9]+", "-", "-".join(words)).strip("-")[:64] or "volume"


def validate_add_channel(*, channel: str, case_dir: str | os.PathLike, model: str | None = None,
                         replace: bool = False) -> dict[str, Any]:
    """Parameters of an ``add-channel`` job adding ``channel`` (seg or ct) to the saved case folder ``case_dir``."""
    if channel not in CHANNEL_TOOLS:
        raise InputError(f"Unknown channel '{channel}'; the panel adds seg or ct.")
    case = Path(case_dir).expanduser().absolute()
    if not case.exists():
        raise InputError(f"The case {case} does not exist; save the volume for the engine first.")
    params: dict[str, Any] = {"case": str(case), "channel": channel, "replace": bool(replace)}
    if model:
        params["model"] = model
    return params


def validate_tumour(*, mask: str | os.PathLike, outline: bool, seed: int, model: str, margin_mm: float | None = None,
                    case_dir: str | os.PathLike | None = None, steps: int | None = None) -> dict[str, Any]:
    """Parameters of an ``add-tumour`` job (with ``case_dir``) or of a mask-conditioned ``generate`` job (without).

    ``steps`` (sampling steps; None or 0 for the model's default) applies to adding to a case only.
    """
    path = Path(mask).expanduser().absolute()
    if not path.is_file():
        raise InputError(f"The tumour mask {path} does not exist; draw the tumour (or choose a mask file) first.")
    if not model:
        raise InputError("No tumour model is selected; connect to an engine that has a mask-conditioned model (ldm3d).")
    if int(seed) < 0:
        raise InputError("The seed must be zero or positive.")
    params: dict[str, Any] = {"model": model, "seed": int(seed), "mask": str(path), "outline": bool(outline)}
    if case_dir is None:
        params.update(n=1, layout="brats", channels=["t1", "t1ce", "t2", "flair", "seg"])
        return params
    if margin_mm is not None and not 0 < float(margin_mm) <= 50:
        raise InputError(f"Margin {margin_mm:g} mm is out of range; choose above 0 and at most 50 mm.")
    case = Path(case_dir).expanduser().absolute()
    if not case.is_dir():
        raise InputError(f"The case folder {case} does not exist; save the case for the engine first.")
    params["case"] = str(case)
    if margin_mm is not None:
        params["margin_mm"] = float(margin_mm)
    if steps:
        if not 1 <= int(steps) <= 1000:
            raise InputError(f"Steps {steps} is out of range; choose 1 to 1000 (or 0 for the model's default).")
        params["steps"] = int(steps)
    return params


# -- results ----------------------------------------------------------------------------------------------


def result_to_load(job: dict[str, Any]) -> tuple[str, Any] | None:
    """What a succeeded job made that the panel shows: ("case", folder) or ("files", [channel files]); else None."""
    if not job or job.get("state") != "succeeded":
        return None
    result = job.get("result") or {}
    if job.get("kind") == "generate":
        return "case", first_case_dir(job["output_dir"])
    if job.get("kind") == "add-tumour" and result.get("case"):
        return "case", Path(result["case"])
    if job.get("kind") == "add-channel":
        files = [Path(p) for p in result.get("written", []) if str(p).endswith((".nii.gz", ".nii"))]
        return ("files", files) if files else None
    return None


def first_case_dir(set_dir: str | os.PathLike) -> Path:
    """The folder of the first case of a BraTS-style set (from its manifest, else the first case sub-folder)."""
    set_dir = Path(set_dir)
    manifest = set_dir / "manifest.json"
    if manifest.is_file():
        try:
            cases = json.loads(manifest.read_text())["cases"]
            files = cases[0]["files"]
            return set_dir / Path(next(iter(files.values()))).parent
        except (OSError, ValueError, KeyError, IndexError, TypeError, StopIteration):
            pass
    cases = _case_folders(set_dir) if set_dir.is_dir() else []
    if not cases:
        raise InputError(f"{set_dir} holds no case folder to show.")
    return cases[0]


_LOG_FIELDS = ("step", "stage", "alpha", "time")


def read_loss_log(path: str | os.PathLike) -> list[tuple[int, dict[str, float]]]:
    """Every logged step of a fine-tune's ``loss.jsonl`` as (step, {loss name: value}); unreadable lines are skipped."""
    rows: dict[int, dict[str, float]] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            row = json.loads(line)
            step = int(row["step"])
        except (ValueError, KeyError, TypeError):
            continue  # a line being written right now
        rows[step] = {k: float(v) for k, v in row.items() if k not in _LOG_FIELDS and isinstance(v, (int, float))}
    return sorted(rows.items())


def latest_mosaic(files: list[str]) -> str | None:
    """The sample mosaic with the highest step among a job's files (``samples/mosaic_step<N>.png``)."""
    best: tuple[int, str] | None = None
    for name in files:
        match = _MOSAIC.search(name)
        if match and (best is None or int(match.group(1)) > best[0]):
            best = (int(match.group(1)), name)
    return best[1] if best else None


# -- engine and jobs --------------------------------------------------------------------------------------


@dataclass
class EngineSession:
    """The engine the panel talks to: one it started (``process``) or one it connected to by URL."""

    client: EngineClient | None = None
    process: Any = None  # MedSynthLib.launcher.EngineProcess when this panel started it
    health: dict[str, Any] = field(default_factory=dict)

    @property
    def connected(self) -> bool:
        return self.client is not None

    def start_local(self, python: str | os.PathLike, state_dir: str | os.PathLike, device: str | None = None,
                    extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> dict[str, Any]:
        """Start the engine with ``python`` (an interpreter whose environment has the engine installed).

        ``env``: the environment for it (in Slicer, the one from before Slicer's launcher set PYTHONHOME etc.).
        """
        from .launcher import EngineProcess

        if not str(python).strip():
            raise InputError("No Python interpreter is set for the engine; choose the engine environment's python.")
        if not Path(python).expanduser().is_file():
            raise InputError(f"The engine interpreter {python} does not exist; choose the engine environment's python.")
        process = EngineProcess.start(Path(python).expanduser(), state_dir=state_dir, device=device or None,
                                      extra_args=extra_args, env=env)
        try:
            return self._attach(process.client(timeout=10.0), process)
        except EngineError:
            process.stop()
            raise

    def connect(self, url: str, token: str | None = None, token_file: str | None = None) -> dict[str, Any]:
        """Connect to a running engine by URL (and token)."""
        if not url.strip().startswith(("http://", "https://")):
            raise InputError(f"'{url}' is not an engine address; give one like http://127.0.0.1:8765.")
        client = EngineClient(url.strip(), token or None, token_file=token_file or None, timeout=10.0)
        return self._attach(client, None)

    def _attach(self, client: EngineClient, process: Any) -> dict[str, Any]:
        health = client.health()
        client.models()  # checks the token too: /health needs none
        self.client, self.process, self.health = client, process, health
        return health

    def alive(self) -> bool:
        """Whether a started engine process still runs (True for a URL connection: that is checked by polling)."""
        return self.process is None or self.process.alive()

    def stop(self) -> None:
        """Stop an engine this panel started; forget a connected one."""
        if self.process is not None:
            self.process.stop()
        self.client, self.process, self.health = None, None, {}


@dataclass
class JobTracker:
    """The one job the panel follows: its last record, loss history and what went wrong."""

    job: dict[str, Any] | None = None
    losses: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    lost: str = ""  # set when the engine stopped answering about this job

    @property
    def active(self) -> bool:
        return self.job is not None and not self.lost and self.job.get("state") in _ACTIVE_STATES

    @property
    def kind(self) -> str:
        return self.job.get("kind", "") if self.job else ""

    def follow(self, job: dict[str, Any]) -> None:
        self.job, self.losses, self.lost = job, [], ""
        self._record(job)

    def update(self, job: dict[str, Any]) -> None:
        self.job = job
        self._record(job)

    def _record(self, job: dict[str, Any]) -> None:
        metrics = job.get("metrics") or {}
        losses = metrics.get("losses")
        step = metrics.get("step")
        if isinstance(losses, dict) and isinstance(step, int) and (not self.losses or step > self.losses[-1][0]):
            self.losses.append((step, {k: float(v) for k, v in losses.items() if isinstance(v, (int, float))}))


@dataclass
class PanelView:
    """Everything the front ends show: status texts, progress and, per button, enabled or not (and why not)."""

    engine_status: str
    job_status: str
    progress: int  # 0-100
    enabled: dict[str, bool]
    reasons: dict[str, str]
    error: str = ""


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
        #: Where the panel saves volumes and drawn masks for the engine to read (a folder the engine may use).
        self.work_dir: Path | None = None

    # -- actions (each returns nothing or the job; raises InputError/EngineError with one sentence) --------

    def start_engine(self, python: str, state_dir: str, device: str | None = None,
                     env: dict[str, str] | None = None) -> dict[str, Any]:
        health = self._connected(self.session.start_local(python, state_dir, device, env=env))
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
        return health

    def generators(self) -> list[str]:
        """Models the Generate section offers (the default first); channel models are not generators."""
        return [m["id"] for m in self.models if m.get("kind") in GENERATOR_KINDS]

    def tumour_models(self) -> list[str]:
        """Mask-conditioned models for the Tumour section (latent diffusion), the shipped default first."""
        ids = [m["id"] for m in self.models if m.get("kind") == "diffusion"]
        return sorted(ids, key=lambda i: i != TUMOUR_MODEL)

    def finetune_bases(self) -> list[str]:
        """Models a fine-tune can start from: the engine's trainable models, GANs first (one training stage, the
        shortest path to a model of one's own data), else the pgan3d architecture (from scratch)."""
        trainable = [m for m in self.models if m.get("kind") not in ("procedural", None)]
        trainable.sort(key=lambda m: m.get("kind") != "gan")  # stable: the engine's order within each group
        return [m["id"] for m in trainable] or ["pgan3d"]

    def stop_engine(self, force: bool = False) -> bool:
        """Stop the engine unless a job runs (``force`` stops it anyway); returns whether it was stopped."""
        if self.tracker.active and not force:
            return False
        self.session.stop()
        self.models, self.channel_models = [], []
        return True

    def generate(self, *, voxel_size: float | None = None, **inputs: Any) -> dict[str, Any]:
        """Submit a generate job; ``voxel_size`` (mm) keeps the model's field of view at a coarser or finer grid."""
        if voxel_size:
            inputs.update(self.grid_for(inputs.get("model", ""), float(voxel_size)))
        return self._submit("generate", validate_generate(**inputs))

    def grid_for(self, model_id: str, voxel_size: float) -> dict[str, Any]:
        """Shape and spacing that cover the model's field of view with cubic voxels of ``voxel_size`` mm."""
        if not 0.5 <= voxel_size <= 16:
            raise InputError(f"Voxel size {voxel_size:g} mm is out of range; choose between 0.5 and 16 mm.")
        card = next((m for m in self.models if m.get("id") == model_id), None)
        if not card or not card.get("shape") or not card.get("spacing"):
            return {}
        field_mm = [n * s for n, s in zip(card["shape"], card["spacing"])]
        return {"shape": [max(8, round(f / voxel_size)) for f in field_mm], "spacing": voxel_size}

    def finetune(self, **inputs: Any) -> dict[str, Any]:
        """Submit a fine-tune; ``finetune_options`` adds advanced FinetuneRequest fields (resolution, batch_size...)."""
        return self._submit("finetune", {**validate_finetune(**inputs), **self.finetune_options})

    def export(self, **inputs: Any) -> dict[str, Any]:
        if "job" not in inputs and "source" not in inputs:
            inputs["job"] = self.last_generate_job
        return self._submit("export", validate_export(**inputs))

    def cancel(self) -> dict[str, Any]:
        if not self.tracker.active:
            raise InputError("No job is running; there is nothing to cancel.")
        job = self._client().cancel(self.tracker.job["id"])
        self.tracker.update(job)
        return job

    def resume(self) -> dict[str, Any]:
        job = self.tracker.job
        if not job or job.get("kind") != "finetune" or job.get("state") not in ("cancelled", "interrupted"):
            raise InputError("Only a cancelled or interrupted fine-tune can be resumed.")
        job = self._client().resume(job["id"])
        self.tracker.update(job)
        self.tracker.lost = ""
        return job

    def channel_tool_reason(self, channel: str, volume_name: str | None) -> str:
        """Why adding ``channel`` (seg or ct) to ``volume_name`` cannot start now; empty when it can."""
        tool = CHANNEL_TOOLS[channel]
        if not self.session.connected:
            return f"Adding a {tool['label']} needs the engine; start or connect it first."
        if not volume_name:
            return f"Adding a {tool['label']} needs a loaded volume; generate a case or load one first."
        if not any(m.get("channel") == channel for m in self.channel_models):
            return f"Adding a {tool['label']} needs a {channel} model, which this engine does not have; update the engine."
        if self.tracker.active:
            return f"A {self.tracker.kind} job is running; wait for it or cancel it."
        return ""

    def input_folder(self, volume_name: str) -> Path:
        """A new case folder under the work folder to save ``volume_name`` (or a drawn mask) in for the engine."""
        if self.work_dir is None:
            raise InputError("The engine is not running; start it or connect to it first.")
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
            return "Drawing a tumour into a case needs the engine; start or connect it first."
        if not self.tumour_models():
            return "This engine has no mask-conditioned model (ldm3d); update the engine."
        if not segment:
            return "Draw the tumour first (a segment in Slicer's Segment Editor, or the studio's brush) and select it."
        if action == "add" and not volume_name:
            return "Select the case to add the tumour to (a loaded volume)."
        if self.tracker.active:
            return f"A {self.tracker.kind} job is running; wait for it or cancel it."
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
            raise InputError(f"A {self.tracker.kind} job is still running; wait for it or cancel it first.")
        job = self._client().submit(kind, params)
        self.error = ""
        self.tracker.follow(job)
        if kind == "generate":
            self.last_generate_job = None
        return job

    def _client(self) -> EngineClient:
        if not self.session.connected:
            raise InputError("The engine is not running; start it or connect to it first.")
        return self.session.client

    # -- polling ----------------------------------------------------------------------------------------

    def poll(self) -> dict[str, Any] | None:
        """One timer tick: refresh the followed job. A job that just ended is kept in ``finished`` for the front end."""
        tracker = self.tracker
        if not tracker.active:
            return tracker.job
        if not self.session.alive():
            self._lose("The engine process stopped")
            return tracker.job
        try:
            job = self._client().job(tracker.job["id"])
        except EngineError as exc:
            if exc.status is None:
                self._lose("The engine stopped answering")
                return tracker.job
            raise
        tracker.update(job)
        if job["kind"] == "finetune" and job.get("output_dir"):
            logged = read_loss_log(Path(job["output_dir"]) / "loss.jsonl")  # every step, not only the polled ones
            if len(logged) >= len(tracker.losses):
                tracker.losses = logged
        if job["state"] in TERMINAL_STATES:
            self.finished = job
            if job["state"] == "succeeded" and job["kind"] == "generate":
                self.last_generate_job = job["id"]
            if job["state"] == "failed":
                self.error = job.get("error") or f"The {job['kind']} job failed."
        return job

    def _lose(self, what: str) -> None:
        kind = self.tracker.kind or "running"
        self.tracker.lost = (
            f"{what} during the {kind} job; start the engine again (finished results are kept, a fine-tune can be resumed)."
        )
        self.error = self.tracker.lost
        if self.session.process is not None and not self.session.process.alive():
            self.session.stop()
        else:
            self.session.client = None
        self.models, self.channel_models = [], []

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
            where = "started here" if self.session.process is not None else self.session.client.url
            engine_status = f"Engine {version} running on {device} ({where})."
        else:
            engine_status = "Engine not running."
        job = self.tracker.job
        if self.tracker.lost:
            job_status, progress = self.tracker.lost, int(round(100 * float(job.get("progress") or 0)))
        elif job:
            message = job.get("error") if job.get("state") == "failed" else job.get("message")
            job_status = f"{job['kind'].capitalize()} job {job['state']}" + (f": {message}" if message else ".")
            progress = int(round(100 * float(job.get("progress") or 0)))
        else:
            job_status, progress = "No job yet.", 0
        reasons: dict[str, str] = {}
        not_connected = "Start or connect the engine first."
        running = f"A {self.tracker.kind} job is running; wait for it or cancel it."
        for name in ("generate", "finetune", "export"):
            reasons[name] = not_connected if not connected else running if busy else ""
        if not reasons["export"] and not self.last_generate_job:
            reasons["export"] = "Generate a set first; export re-writes it as an anonymised set."
        reasons["cancel"] = "" if busy else "No job is running."
        can_resume = bool(job) and job.get("kind") == "finetune" and job.get("state") in ("cancelled", "interrupted")
        reasons["resume"] = "" if (can_resume and connected and not busy) else "Only a stopped fine-tune can be resumed."
        reasons["start_engine"] = "The engine is already connected." if connected else ""
        reasons["stop_engine"] = "" if connected else "The engine is not running."
        volume = inputs.get("volume")
        for channel in CHANNEL_TOOLS:
            reasons[f"add_{channel}"] = self.channel_tool_reason(channel, volume)
        for action in ("generate", "add"):
            reasons[f"tumour_{action}"] = self.tumour_reason(action, inputs.get("segment"), inputs.get("case", volume))
        enabled = {name: not reason for name, reason in reasons.items()}
        return PanelView(engine_status, job_status, progress, enabled, reasons, self.error)


def loss_series(losses: list[tuple[int, dict[str, float]]]) -> dict[str, tuple[list[int], list[float]]]:
    """Per loss name, (steps, values): what the loss chart plots."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for step, values in losses:
        for name, value in values.items():
            steps, ys = series.setdefault(name, ([], []))
            steps.append(step)
            ys.append(value)
    return series
