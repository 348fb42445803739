"""``medsynth-engine serve``: bind the socket, write a fresh token, start the job runner and serve the app.

The socket is bound first (port 0 picks a free one); a fresh random token goes to ``<state dir>/engine.token``
(mode 0600); the first stdout line is ``{"url", "token_file", "pid"}``. One engine per state folder (a lock).
The HTTP application itself is ``server.create_app``.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import secrets
import socket
from pathlib import Path

from MedSynthLib.launcher import TOKEN_FILE_NAME, default_state_dir

from .errors import MedSynthError

__all__ = ["add_serve_parser", "serve"]


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    serve_parser = sub.add_parser("serve", help="run the HTTP engine (prints one JSON line with its address)")
    serve_parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)")
    serve_parser.add_argument("--port", type=int, default=0, help="port (default 0: any free port)")
    serve_parser.add_argument("--state-dir", type=Path, default=None, help="jobs, token and logs (default ~/.medsynth/engine)")
    serve_parser.add_argument("--device", default=None, help="default device for jobs: auto, cpu, cuda, cuda:N, mps")
    serve_parser.add_argument("--allow-remote", action="store_true",
                              help="allow binding a non-loopback address (needs --tls-cert and --tls-key: HTTPS only)")
    serve_parser.add_argument("--tls-cert", type=Path, default=None, help="PEM certificate (chain) to serve HTTPS with")
    serve_parser.add_argument("--tls-key", type=Path, default=None, help="PEM private key of --tls-cert")
    serve_parser.add_argument("--keep-jobs", type=int, default=None, metavar="N",
                              help="keep the N newest succeeded or failed jobs, delete older ones with their folders; interrupted and cancelled jobs stay, they can resume (default: keep all)")
    serve_parser.add_argument("--keep-jobs-days", type=float, default=None, metavar="DAYS",
                              help="delete succeeded or failed jobs (and their folders) DAYS after they ended (default: keep all)")
    serve_parser.add_argument(
        "--allow-dir", type=Path, action="append", default=None,
        help="folder jobs may read and write (repeatable; default: your home; the state folder always)",
    )
    serve_parser.add_argument(
        "--gpus", default=None, metavar="LIST",
        help="devices generate jobs share their cases over, one worker process each: GPU indices (0,1) or cpu entries (cpu,cpu)",
    )
    serve_parser.add_argument("--max-models", type=int, default=2, help="models kept warm in memory (default 2)")
    serve_parser.add_argument(
        "--model-memory-mb", type=int, default=None,
        help="memory the warm models may hold (default: a quarter of this machine's RAM); the newest always stays",
    )
    serve_parser.add_argument("--cancel-grace", type=float, default=5.0, help="seconds a cancelled worker gets to checkpoint")
    serve_parser.add_argument(
        "--no-requeue", action="store_true",
        help="leave generate and export jobs a crashed engine was running as interrupted (default: queue them again to continue)",
    )
    serve_parser.set_defaults(func=serve)


def serve(args: argparse.Namespace) -> int:
    """Run the engine until SIGTERM or Ctrl-C."""
    host = args.host
    if not _is_loopback(host) and not args.allow_remote:
        raise MedSynthError(f"Refusing to listen on {host}, which is not a loopback address; add --allow-remote to serve other machines.")
    tls = check_tls(args.tls_cert, args.tls_key, args.allow_remote)
    if args.keep_jobs is not None and args.keep_jobs < 0 or args.keep_jobs_days is not None and not args.keep_jobs_days >= 0:
        raise MedSynthError("--keep-jobs and --keep-jobs-days must be 0 or more.")
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
    from .heap import IdleRelease, retain_freed_memory

    retain_freed_memory()  # before torch and the job threads allocate: cases reuse the memory earlier ones freed
    import psutil
    import uvicorn

    from .device import select_device
    from .jobs.paths import PathPolicy
    from .jobs.retention import Retention
    from .jobs.runner import JobRunner
    from .jobs.store import JobStore
    from .registry import default_registry
    from .sharding import parse_devices

    device = select_device(args.device)
    devices = parse_devices(args.gpus) if args.gpus else ()
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
        requeue_interrupted=not args.no_requeue,
        retention=Retention(args.keep_jobs, args.keep_jobs_days),
        devices=devices,
    )
    idle_release = IdleRelease(runner.last_active)  # an idle engine gives a render's peak back
    token = secrets.token_urlsafe(32)
    token_file = state_dir / TOKEN_FILE_NAME
    _write_private(token_file, token + "\n")
    from .server import create_app

    app = create_app(runner, token, str(device))
    sock = _bind(host, args.port)
    port = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    scheme = "https" if tls else "http"
    print(json.dumps({"url": f"{scheme}://{url_host}:{port}", "token_file": str(token_file), "pid": os.getpid()}), flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=2, lifespan="on",
                            ssl_certfile=str(tls[0]) if tls else None, ssl_keyfile=str(tls[1]) if tls else None)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        idle_release.stop()
        store.close()
        lock.close()
    return 0


def check_tls(cert: Path | None, key: Path | None, remote: bool) -> tuple[Path, Path] | None:
    """The certificate and key to serve HTTPS with, checked to load; other machines get HTTPS or nothing (the token
    and the patients' file names would cross the network in clear)."""
    if remote and (cert is None or key is None):
        raise MedSynthError("--allow-remote serves other machines over HTTPS only; give --tls-cert and --tls-key (PEM files).")
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise MedSynthError("Give --tls-cert and --tls-key together: the certificate and its private key.")
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise MedSynthError(f"The certificate {cert} and key {key} cannot serve HTTPS ({getattr(exc, 'strerror', None) or exc}).") from None
    return Path(cert).resolve(), Path(key).resolve()


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
