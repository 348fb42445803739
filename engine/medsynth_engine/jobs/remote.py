"""Running a ``medsynth`` command as a job on a running engine (``--engine URL``), with the same progress bar.

Only the standard-library client is used, so this path never loads a model in the calling process.
Ctrl-C cancels the job on the engine.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from MedSynthLib.client import EngineClient, EngineError
from MedSynthLib.launcher import TOKEN_FILE_NAME, default_state_dir

from ..errors import MedSynthError
from ..progress import ProgressBar

__all__ = ["engine_client", "run_job", "run_generate_on_engine"]


def engine_client(url: str, token_file: Path | None) -> EngineClient:
    """A client for ``url``, with the token from ``token_file`` (default: the default state folder's)."""
    path = Path(token_file or default_state_dir() / TOKEN_FILE_NAME).expanduser()
    if not path.is_file():
        raise MedSynthError(f"The engine token file {path} does not exist; pass the engine's token file with --token-file.")
    try:
        return EngineClient(url, token_file=path, timeout=30.0)
    except EngineError as exc:
        raise MedSynthError(str(exc)) from None


def run_job(client: EngineClient, kind: str, params: dict[str, Any], label: str, quiet: bool) -> dict[str, Any]:
    """Submit, follow with a progress bar until it ends, and return the final job; failures become MedSynthError."""
    bar = ProgressBar(label, quiet=quiet)
    try:
        job = client.submit(kind, params)
    except EngineError as exc:
        raise MedSynthError(str(exc)) from None

    shown = {"step": -1}

    def show(current: dict[str, Any]) -> None:
        metrics = current.get("metrics") or {}
        step, total = int(metrics.get("step") or 0), int(metrics.get("total") or 0)
        if total and step != shown["step"] and (current["state"] == "running" or current["state"] == "succeeded"):
            shown["step"] = step
            bar(step, total)

    try:
        job = client.wait(job["id"], poll=0.25, progress=show)
    except KeyboardInterrupt:
        try:
            client.cancel(job["id"])
        except EngineError:
            pass
        raise
    except EngineError as exc:
        raise MedSynthError(str(exc)) from None
    if job["state"] != "succeeded":
        reason = job.get("error") or job.get("message") or job["state"]
        raise MedSynthError(f"The engine's {kind} job {job['id']} ended {job['state']}: {reason.rstrip('.')}.")
    return job


def run_generate_on_engine(args: argparse.Namespace) -> int:
    if getattr(args, "audit_against", None) is not None:
        raise MedSynthError("--audit-against runs in this process only; leave out --engine, or run medsynth audit on the set afterwards.")
    params: dict[str, Any] = {
        "model": args.model,
        "n": args.n if args.n is not None else 1,
        "seed": args.seed,
        "channels": args.channels,
        "layout": args.layout,
        "tumour": not args.no_tumour,
        "out": str(Path(args.out).expanduser().absolute()),
    }
    for name in ("shape", "spacing", "device"):
        value = getattr(args, name)
        if value is not None:
            params[name] = list(value) if isinstance(value, tuple) else value
    if getattr(args, "mask", None) is not None:  # the engine reads it: same machine or a shared folder
        params["mask"] = str(Path(args.mask).expanduser().absolute())
    for flag in ("resume", "discard"):
        if getattr(args, flag, False):
            params[flag] = True
    if getattr(args, "cohort", None) is not None:  # sent inline: the engine need not see the file
        from ..cohort.spec import read_cohort

        params["cohort"] = read_cohort(Path(args.cohort)).to_dict()
        params.pop("n")
    if getattr(args, "balance", None) is not None:
        params["balance"] = args.balance
    job = run_job(engine_client(args.engine, args.token_file), "generate", params, "Generating", args.quiet)
    out = job["output_dir"]
    if args.quiet:
        print(out)
    else:
        print(f"The engine ({args.engine}) wrote {job.get('result', {}).get('cases', args.n)} case(s) to {out} (job {job['id']}, on the engine's machine).")
    return 0
