"""The engine's HTTP application: FastAPI, a bearer token, and the job API (``serve.py`` runs it).

Every endpoint but ``GET /health`` needs ``Authorization: Bearer <token>``. User errors are
4xx ``{"error": "<one sentence>"}``: 403 a path outside the allowed folders, 404 something that is not there,
409 a request that cannot work with the engine's files, jobs or devices as they are, 422 a malformed one,
413 / 414 a body or a path over the size limits (``httplimits.py``).
"""

from __future__ import annotations

import logging
import secrets
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import __version__
from .errors import MedSynthError
from .httplimits import RequestLimits
from .jobs.paths import safe_join
from .jobs.spec import Conflict, Forbidden, Missing
from .jobs.store import JobNotFound
from .shutdown import request_shutdown

if TYPE_CHECKING:
    from .jobs.runner import JobRunner

__all__ = ["create_app", "submission_type"]


class ErrorBody(BaseModel):
    error: str


class Health(BaseModel):
    status: Literal["ok"]
    version: str
    device: str


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


class ChannelModelRow(BaseModel):
    """A model that adds a channel to a case (``add-channel`` jobs); other fields come from its card."""

    model_config = ConfigDict(extra="allow")


_BEARER = HTTPBearer(auto_error=False, description="The token in the engine's token file.")
_ERRORS = {
    400: {"model": ErrorBody, "description": "The request cannot work (one sentence says why)"},
    401: {"model": ErrorBody, "description": "Missing or wrong bearer token"},
    403: {"model": ErrorBody, "description": "A path outside the folders this engine may use"},
    404: {"model": ErrorBody, "description": "No such job, model, file, folder or data"},
    409: {"model": ErrorBody, "description": (
        "The request cannot work with the engine's files, jobs or devices as they are: an output that exists, "
        "a job in another state, a device this machine lacks, a set without the channels asked for"
    )},
    422: {"model": ErrorBody, "description": "Malformed request or parameter (see the params schema of its kind)"},
}
#: Where a submitted job's id leads (OpenAPI links, which stateful API tests follow).
_JOB_LINKS = {
    name: {"operationId": operation, "parameters": {"job_id": "$response.body#/id"}}
    for name, operation in (("GetJob", "getJob"), ("ListJobFiles", "listJobFiles"), ("CancelJob", "cancelJob"),
                            ("ResumeJob", "resumeJob"))
}


class JobKindInfo(BaseModel):
    """One job kind: the JSON Schema of its params (what the engine accepts), its lane and where it runs."""

    summary: str
    params_schema: dict[str, Any]
    lane: Literal["kind", "device"] = Field(description="Jobs of one kind, or of one device, run one at a time")
    runs_in: Literal["engine", "worker"]
    resumable: bool


class JobKinds(BaseModel):
    kinds: dict[str, JobKindInfo]


def submission_type() -> Any:
    """``POST /jobs``'s body: ``{"kind": ..., "params": {...}}``, one member per job kind, discriminated by ``kind``."""
    from pydantic import create_model

    from .jobs.kinds import job_kinds

    members = []
    for kind in job_kinds().values():
        try:
            kind.params.model_validate({})
            params_field: Any = Field(default_factory=kind.params)
        except ValidationError:
            params_field = ...
        title = "".join(part.title() for part in kind.name.split("-"))
        members.append(create_model(
            f"{title}Job", __config__=ConfigDict(extra="forbid"), __doc__=kind.summary,
            kind=(Literal[kind.name], ...), params=(kind.params, params_field),
        ))
    return Annotated[Union[tuple(members)], Field(discriminator="kind")]  # noqa: UP007 (a runtime tuple of members)


def create_app(runner: JobRunner, token: str, device: str) -> FastAPI:
    """The FastAPI application serving ``runner``; ``token`` guards every route but /health."""
    from fastapi import Body

    from .jobs.schema import validation_sentence

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
    app.add_middleware(RequestLimits)
    auth = [Depends(authorised)]

    @app.exception_handler(RequestValidationError)
    async def _request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"error": _request_sentence(exc)}, status_code=422)

    @app.exception_handler(ValidationError)
    async def _params_invalid(request: Request, exc: ValidationError) -> JSONResponse:
        return JSONResponse({"error": validation_sentence(exc)}, status_code=422)

    @app.exception_handler(MedSynthError)
    async def _refused(request: Request, exc: MedSynthError) -> JSONResponse:
        status = 403 if isinstance(exc, Forbidden) else 404 if isinstance(exc, Missing) else 409 if isinstance(exc, Conflict) else 400
        return JSONResponse({"error": str(exc)}, status_code=status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "The request was refused."
        if exc.status_code == 404 and message == "Not Found":
            message = f"There is no endpoint {request.method} {request.url.path}; see /openapi.json."
        headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else getattr(exc, "headers", None)
        if exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /openapi.json."
            headers = {"Allow": ", ".join(_allowed_methods(app, request.url.path))}
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

    @app.get("/models", dependencies=auth, summary="Models this engine can run", operation_id="listModels", responses={
        **_ERRORS, 200: {"description": "One row per model", "links": {"GetModel": {
            "operationId": "getModel", "parameters": {"model_id": "$response.body#/0/id"}}}},
    })
    def models() -> list[dict[str, Any]]:
        return runner.cache.describe()

    @app.get("/channel-models", dependencies=auth, response_model=list[ChannelModelRow], responses=_ERRORS,
             summary="Models add-channel jobs can use, per channel")
    def channel_models() -> list[dict[str, Any]]:
        try:
            from .addchannel import channel_models as listed
        except ImportError:  # an engine without the add-channel feature
            return []
        return listed()

    # Kept out of the published schema: the launcher's (Windows has no SIGINT), not an API for clients or fuzzers.
    @app.post("/shutdown", dependencies=auth, status_code=202, include_in_schema=False)
    def shutdown() -> dict[str, str]:
        request_shutdown()  # as SIGINT/SIGTERM do: running jobs end as interrupted (resumable); needed on Windows
        return {"status": "stopping"}

    @app.get("/models/{model_id}", dependencies=auth, responses=_ERRORS, summary="One model's card", operation_id="getModel")
    def model(model_id: str) -> dict[str, Any]:
        if model_id not in runner.registry.ids():
            raise JobNotFound(f"There is no model '{model_id}'; GET /models lists them.")
        plugin = runner.cache.get(model_id)
        return {**plugin.card.to_dict(), "weights_origin": plugin.weights_origin, "weights_sha256": plugin.weights_sha256()}

    def submit(submission) -> dict[str, Any]:
        return runner.submit(submission.kind, submission.params)

    submit.__annotations__["submission"] = Annotated[submission_type(), Body()]
    app.post(
        "/jobs", dependencies=auth, response_model=Job, status_code=201, operation_id="submitJob", summary="Submit a job",
        responses={**_ERRORS, 201: {"description": "The job, queued", "links": _JOB_LINKS}},
        description="The params of each kind are named as the `medsynth` command's options; GET /job-kinds serves "
                    "their schemas. A model's own limits (channels, grid, mask) are checked when the job starts.",
    )(submit)

    @app.get("/job-kinds", dependencies=auth, response_model=JobKinds, responses=_ERRORS, operation_id="jobKinds",
             summary="The kinds of job, with the schema of their params")
    def kinds() -> dict[str, Any]:
        return {"kinds": {name: kind.describe() for name, kind in runner.kinds.items()}}

    @app.get("/jobs", dependencies=auth, response_model=list[Job], operation_id="listJobs", responses=_ERRORS, summary="All jobs, newest first")
    def jobs() -> list[dict[str, Any]]:
        return runner.store.list()

    @app.get("/jobs/{job_id}", dependencies=auth, operation_id="getJob", response_model=Job, responses=_ERRORS, summary="One job")
    def job(job_id: str) -> dict[str, Any]:
        return runner.get(job_id)

    @app.post("/jobs/{job_id}/cancel", dependencies=auth, operation_id="cancelJob", response_model=Job, responses=_ERRORS, summary="Cancel a job")
    def cancel(job_id: str) -> dict[str, Any]:
        return runner.cancel(job_id)

    @app.delete("/jobs/{job_id}", dependencies=auth, operation_id="deleteJob", status_code=204, responses=_ERRORS,
                summary="Remove a finished job and its folder (409 while it is queued or running)")
    def delete(job_id: str) -> None:
        runner.delete(job_id)

    @app.post("/jobs/{job_id}/resume", dependencies=auth, operation_id="resumeJob", response_model=Job, responses=_ERRORS, summary="Resume an interrupted or cancelled job (fine-tune, generate, export)")
    def resume(job_id: str) -> dict[str, Any]:
        return runner.resume(job_id)

    @app.get("/jobs/{job_id}/files", dependencies=auth, operation_id="listJobFiles", summary="Relative paths of a job's outputs",
             responses={**_ERRORS, 200: {"description": "The paths", "links": {"GetJobFile": {"operationId": "getJobFile",
                        "parameters": {"job_id": "$request.path.job_id", "path": "$response.body#/0"}}}}})
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
        operation_id="getJobFile",
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
    """One sentence for a malformed request: about ``kind`` and the body, or about one of the kind's params."""
    from .jobs.kinds import job_kinds
    from .jobs.schema import validation_sentence

    errors = exc.errors()
    if not errors:
        return "The request is not valid."
    error = errors[0]
    kind = error.get("type")
    loc = tuple(error.get("loc", ()))
    if kind == "json_invalid":
        return "The request body is not valid JSON."
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        verb = "is required" if kind == "union_tag_not_found" else "is not valid"
        return f"The field 'kind' {verb}; use one of {', '.join(job_kinds())}."
    if loc[:1] == ("body",) and len(loc) >= 3 and loc[2] == "params" and len(loc) > 3:
        return validation_sentence(exc, skip=3)
    if kind == "extra_forbidden":
        return f"Unknown field '{loc[-1]}'; a job is {{\"kind\": ..., \"params\": {{...}}}}."
    return validation_sentence(exc, what="field", skip=2 if loc[:1] == ("body",) else 1)


def _allowed_methods(app: FastAPI, path: str) -> list[str]:
    """The methods some route serves at ``path`` (a 405's ``Allow``): routes of one path are separate objects."""
    methods: set[str] = set()
    for route in app.routes:
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)
