"""``medsynth export``: write an existing set again in another layout or with fewer channels, anonymised."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from MedSynthLib.conventions import ALL_CHANNELS

from ..errors import MedSynthError


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("export", help="re-write a set in another layout (brats, nnunet) or channel subset")
    parser.add_argument("--source", type=Path, required=True, help="a set written by medsynth generate (or export)")
    parser.add_argument("--out", type=Path, required=True, help="new or empty output folder")
    parser.add_argument("--layout", choices=("brats", "nnunet"), default="brats", help="folder layout (default brats)")
    parser.add_argument("--channels", help=f"comma-separated subset of the source's channels ({','.join(ALL_CHANNELS)}); default all")
    parser.add_argument("--audit-against", type=Path, metavar="TRAIN_DIR",
                        help="audit against this training set first and leave probable copies of its cases out")
    parser.add_argument("--audit-threshold", type=float, default=0.5, help="audit score that flags a case (default 0.5)")
    parser.add_argument("--resume", action="store_true", help="continue the interrupted export into --out (give its arguments again)")
    parser.add_argument("--discard", action="store_true", help="drop what an interrupted export into --out left, and start afresh")
    parser.add_argument("--quiet", action="store_true", help="no progress bar; print only the output folder")
    parser.add_argument("--engine", metavar="URL", help="run the export on the engine at URL instead of in this process")
    parser.add_argument("--token-file", type=Path, help="the engine's token file (default: the default state folder's)")


def run(args: argparse.Namespace) -> int:
    from ..progress import ProgressBar

    if args.engine:
        from ..jobs.remote import engine_client, run_job

        params = {
            "source": str(args.source.expanduser().absolute()),
            "out": str(args.out.expanduser().absolute()),
            "layout": args.layout,
        }
        if args.channels:
            params["channels"] = args.channels
        if args.audit_against:
            params["audit_against"] = str(args.audit_against.expanduser().absolute())
            params["audit_threshold"] = args.audit_threshold
        for flag in ("resume", "discard"):
            if getattr(args, flag):
                params[flag] = True
        job = run_job(engine_client(args.engine, args.token_file), "export", params, "Exporting", args.quiet)
        out = Path(job["output_dir"])
    else:
        from ..journal import resume_hint
        from ..setexport import export_set

        if not 0.0 < args.audit_threshold <= 1.0:
            raise MedSynthError(f"--audit-threshold must be above 0 and at most 1, not {args.audit_threshold}.")
        try:
            out = export_set(
                args.source, args.out, layout=args.layout, channels=args.channels, progress=ProgressBar("Exporting", quiet=args.quiet),
                audit_against=args.audit_against, audit_threshold=args.audit_threshold, resume=args.resume, discard=args.discard,
            )
        except KeyboardInterrupt:
            print(f"\nmedsynth: interrupted; {resume_hint(args.out)}", file=sys.stderr)
            return 130
    if args.quiet:
        print(out)
    else:
        print(f"Wrote the {args.layout} set {out}; {out / 'manifest.json'} keeps the source's model and case seeds.")
    return 0
