"""The engine's HTTP service: FastAPI on loopback, a bearer token, and the job API.

``medsynth-engine serve`` binds the socket first (port 0 picks a free one), writes a fresh random token to
``<state dir>/engine.token`` (mode 0600), prints ``{"url", "token_file", "pid"}`` as its first stdout line,
then serves. Every endpoint but ``GET /health`` needs ``Authorization: Bearer <token>``. User errors are
4xx ``{"error": "<one sentence>"}``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import logging
import os
import secrets
import socket
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from MedSynthLib.launcher import TOKEN_FILE_NAME, default_state_dir

from . import __version__
from .errors import MedSynthError
from .jobs.paths import safe_join
from .jobs.store import JobConflict, JobNotFound

if TYPE_CHECKING:
    from .jobs.runner import JobRunner

__all__ = ["create_app", "add_serve_parser", "serve"]


class ErrorBody(BaseModel):
    error: str


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    device: str


class JobSubmission(BaseModel):
    """``params`` are named as the ``medsynth`` command's options for that kind of job.

    ``add-channel``: ``case``, ``channel`` (seg or ct), ``model``, ``out``, ``replace``, ``device``, ``amp``.
    ``add-tumour``: ``case``, ``mask``, ``out``, ``model``, ``seed``, ``margin_mm``, ``steps``, ``device`` and
    ``outline`` (the mask is one drawn region; the engine grows core, rim and oedema from it). ``generate`` also
    takes ``mask`` and ``outline`` for mask-conditioned models. ``prepare``: ``input``, ``out``, ``atlas``,
    ``skull_strip``, ``n4``, ``sequences``, ``keep_key``, ``spacing``, ``device``.
    """

    model_config = ConfigDict(extra="forbid")
    kind: Literal["generate", "finetune", "export", "add-channel", "add-tumour", "prepare"]
    params: dict[str, Any] = Field(default_factory=dict)


class Job(BaseModel):
    id: str
    kind: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
    progress: float
    message: str
    log: list[str]
    error: str | None
    params: dict[str, Any]
    output_dir: str
    created: float
    updated: float
    metrics: dict[str, Any]
    result: dict[str, Any] = Field(default_factory=dict, description="What the job made, e.g. the files it wrote")


class ChannelModel(BaseModel):
    """A model that adds a channel to a case (``add-channel`` jobs); other fields come from its card."""

    model_config = ConfigDict(extra="allow")


_BEARER = HTTPBearer(auto_error=False, description="The token in the engine's token file.")
_ERRORS = {
    400: {"model": ErrorBody, "description": "The request cannot work (one sentence says why)"},
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token"},
    404: {"model": ErrorBody, "description": "No such job, model or file"},
    409: {"model": ErrorBody, "description": "The job's state does not allow this"},
    422: {"model": ErrorBody, "description": "Malformed request or parameter"},
}


def create_app(runner: JobRunner, token: str, device: str) -> FastAPI:
    """The FastAPI application serving ``runner``; ``token`` guards every route but /health."""
    from .jobs.params import validation_sentence

    def authorised(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)]) -> None:
        if credentials is None or not secrets.compare_digest(credentials.credentials.encode(), token.encode()):
            raise StarletteHTTPException(401, "A valid bearer token is needed; read it from the engine's token file.")

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        runner.shutdown()

    app = FastAPI(
        title="MedSynth engine",
        version=__version__,
        description=(
            "Synthetic 3D brain MRI jobs: generate, fine-tune, export, add a channel (seg, CT), add a tumour. "
            "Errors are 4xx {\"error\": sentence}."
        ),
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    auth = [Depends(authorised)]

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _request_sentence(exc)}, status_code=422)

    @app.exception_handler(ValidationError)
    async def _params_invalid(request: Request, exc: ValidationError) -> JSONResponse:
        return JSONResponse({"error": validation_sentence(exc)}, status_code=422)

    @app.exception_handler(MedSynthError)
    async def _refused(request: Request, exc: MedSynthError) -> JSONResponse:
        status = 404 if isinstance(exc, JobNotFound) else 409 if isinstance(exc, JobConflict) else 400
        return JSONResponse({"error": str(exc)}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "The request was refused."
        if exc.status_code == 404 and message == "Not Found":
            message = f"There is no endpoint {request.method} {request.url.path}; see /openapi.json."
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /openapi.json."
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else getattr(exc, "headers", None)
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=headers)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        logging.getLogger("medsynth.engine").error("Unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"error": f"The engine hit an internal error ({exc.__class__.__name__}); its log has the details."}, status_code=500)

    @app.get("/health", response_model=Health, summary="Liveness; needs no token")
    def health() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "device": device}

    @app.get("/openapi.json", include_in_schema=False, dependencies=auth)
    def openapi() -> dict[str, Any]:
        return app.openapi()

    @app.get("/models", dependencies=auth, responses=_ERRORS, summary="Models this engine can run")
    def models() -> list[dict[str, Any]]:
        return runner.cache.describe()

    @app.get("/channel-models", dependencies=auth, response_model=list[ChannelModel], responses=_ERRORS,
             summary="Models add-channel jobs can use, per channel")
    def channel_models() -> list[dict[str, Any]]:
        try:
            from .addchannel import channel_models as listed
        except ImportError:  # an engine without the add-channel feature
            return []
        return listed()

    @app.get("/models/{model_id}", dependencies=auth, responses=_ERRORS, summary="One model's card")
    def model(model_id: str) -> dict[str, Any]:
        if model_id not in runner.registry.ids():
            raise JobNotFound(f"There is no model '{model_id}'; GET /models lists them.")
        plugin = runner.cache.get(model_id)
        return {**plugin.card.to_dict(), "weights_origin": plugin.weights_origin, "weights_sha256": plugin.weights_sha256()}

    @app.post("/jobs", dependencies=auth, response_model=Job, status_code=201, responses=_ERRORS, summary="Submit a job")
    def submit(submission: JobSubmission) -> dict[str, Any]:
        return runner.submit(submission.kind, submission.params)

    @app.get("/jobs", dependencies=auth, response_model=list[Job], responses=_ERRORS, summary="All jobs, newest first")
    def jobs() -> list[dict[str, Any]]:
        return runner.store.list()

    @app.get("/jobs/{job_id}", dependencies=auth, response_model=Job, responses=_ERRORS, summary="One job")
    def job(job_id: str) -> dict[str, Any]:
        return runner.get(job_id)

    @app.post("/jobs/{job_id}/cancel", dependencies=auth, response_model=Job, responses=_ERRORS, summary="Cancel a job")
    def cancel(job_id: str) -> dict[str, Any]:
        return runner.cancel(job_id)

    @app.post("/jobs/{job_id}/resume", dependencies=auth, response_model=Job, responses=_ERRORS, summary="Resume a fine-tune")
    def resume(job_id: str) -> dict[str, Any]:
        return runner.resume(job_id)

    @app.get("/jobs/{job_id}/files", dependencies=auth, responses=_ERRORS, summary="Relative paths of a job's outputs")
    def files(job_id: str) -> list[str]:
        root = Path(runner.get(job_id)["output_dir"])
        if not root.is_dir():
            return []
        return sorted(
            p.relative_to(root).as_posix()
            for p in root.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
        )

    @app.get(
        "/jobs/{job_id}/files/{path:path}",
        dependencies=auth,
        responses={**_ERRORS, 200: {"content": {"application/octet-stream": {}}, "description": "The file"}},
        response_class=FileResponse,
        summary="Download one output file",
    )
    def file(job_id: str, path: str) -> FileResponse:
        root = Path(runner.get(job_id)["output_dir"])
        try:
            target = safe_join(root, path)
        except FileNotFoundError:
            raise JobNotFound(f"Job {job_id} has no output file '{path}'; GET /jobs/{job_id}/files lists them.") from None
        return FileResponse(target, filename=target.name, media_type="application/octet-stream")

    return app


def _request_sentence(exc: RequestValidationError) -> str:
    errors = exc.errors()
    if not errors:
        return "The request is not valid."
    error = errors[0]
    loc = [str(p) for p in error.get("loc", ()) if p not in ("body",)]
    where = ".".join(loc) or "body"
    if error.get("type") == "json_invalid":
        return "The request body is not valid JSON."
    if error.get("type") == "missing":
        return f"The field '{where}' is required."
    if error.get("type") == "extra_forbidden":
        return f"Unknown field '{where}'; a job is {{\"kind\": ..., \"params\": {{...}}}}."
    message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    return f"The field '{where}' is not valid: {message}."


# -- the serve command --------------------------------------------------------------------------------------


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    serve_parser = sub.add_parser("serve", help="run the HTTP engine (prints one JSON line with its address)")
    serve_parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    serve_parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    serve_parser.add_argument("--state-dir", type=Path, default=None, help="jobs, token and logs (default ~/.medsynth/engine)")
    serve_parser.add_argument("--device", default=None, help="default device for jobs: auto, cpu, cuda, cuda:N, mps")
    serve_parser.add_argument("--allow-remote", action="store_true", help="allow binding a non-loopback address")
    serve_parser.add_argument(
        "--allow-dir", type=Path, action="append", default=None,
        help="folder jobs may read and write (repeatable; default: your home; the state folder always)",
    )
    serve_parser.add_argument("--max-models", type=int, default=2, help="models kept warm in memory (default 2)")
    serve_parser.add_argument(
        "--model-memory-mb", type=int, default=None,
        help="memory the warm models may hold (default: a quarter of this machine's RAM); the newest always stays",
    )
    serve_parser.add_argument("--cancel-grace", type=float, default=5.0, help="seconds a cancelled worker gets to checkpoint")
    serve_parser.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    """Run the engine until SIGTERM or Ctrl-C."""
    host = args.host
    if not _is_loopback(host) and not args.allow_remote:
        raise MedSynthError(f"Refusing to listen on {host}, which is not a loopback address; add --allow-remote to serve other machines.")
    if not 0 <= args.port <= 65535:
        raise MedSynthError(f"The port must be 0 to 65535, not {args.port}.")
    if args.max_models < 1:
        raise MedSynthError("--max-models must be at least 1.")
    if args.model_memory_mb is not None and args.model_memory_mb < 1:
        raise MedSynthError("--model-memory-mb must be at least 1.")
    state_dir = (args.state_dir or default_state_dir()).expanduser().resolve()
    try:
        if not state_dir.exists():
            state_dir.mkdir(parents=True)
            state_dir.chmod(0o700)  # job records, logs and models trained on local data are this user's only
    except OSError as exc:
        raise MedSynthError(f"Cannot create the state folder {state_dir} ({exc.strerror or exc}).") from None
    lock = _lock_state_dir(state_dir)
    import psutil
    import uvicorn

    from .device import select_device
    from .jobs.paths import PathPolicy
    from .jobs.runner import JobRunner
    from .jobs.store import JobStore
    from .registry import default_registry

    device = select_device(args.device)
    allowed = [state_dir, *(args.allow_dir if args.allow_dir else [Path.home()])]
    for folder in allowed:
        if not Path(folder).expanduser().is_dir():
            raise MedSynthError(f"The allowed folder {folder} does not exist.")
    store = JobStore(state_dir / "jobs.sqlite")
    runner = JobRunner(
        store,
        state_dir / "jobs",
        default_registry(),
        PathPolicy(allowed),
        default_device=args.device,
        max_models=args.max_models,
        max_model_bytes=(args.model_memory_mb << 20) if args.model_memory_mb else psutil.virtual_memory().total // 4,
        cancel_grace=args.cancel_grace,
    )
    token = secrets.token_urlsafe(32)
    token_file = state_dir / TOKEN_FILE_NAME
    _write_private(token_file, token + "\n")
    app = create_app(runner, token, str(device))
    sock = _bind(host, args.port)
    port = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    print(json.dumps({"url": f"http://{url_host}:{port}", "token_file": str(token_file), "pid": os.getpid()}), flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2, lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        store.close()
        lock.close()
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise MedSynthError(f"Cannot listen on {host}:{port} ({exc.strerror or exc}); choose another --port or --host.") from None
    sock.listen(128)
    sock.set_inheritable(False)
    return sock


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by this user only (mode 0600), through a temporary name."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _lock_state_dir(state_dir: Path):
    """Hold an exclusive lock on the state folder: two engines sharing one job store would corrupt each other's view."""
    handle = open(state_dir / "engine.lock", "a+")
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; one engine per state folder is then the user's duty
        return handle
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise MedSynthError(f"Another engine is already using {state_dir}; stop it or choose another --state-dir.") from None
    return handle
