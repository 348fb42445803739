"""The ``medsynth`` command: everything MedSynth does, without Slicer.

Errors the user can fix are one sentence on stderr and exit code 2; nothing is left half-written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from MedSynthLib.conventions import ALL_CHANNELS

from . import __version__
from .errors import MedSynthError

__all__ = ["main", "build_parser"]

EXIT_USAGE = 2


def _triple(kind: type, what: str):
    def parse(text: str) -> tuple:
        parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
        if len(parts) == 1:
            parts = parts * 3
        if len(parts) != 3:
            raise argparse.ArgumentTypeError(f"{what} needs one value or three (X,Y,Z), not '{text}'")
        try:
            values = tuple(kind(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} '{text}' is not a list of numbers") from None
        return values

    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medsynth", description="Synthetic 3D brain MRI with tumour labels.")
    parser.add_argument("--version", action="version", version=f"medsynth {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = sub.add_parser("models", help="list the models this installation can run")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")

    gen = sub.add_parser("generate", help="generate a synthetic set and write it as NIfTI")
    gen.add_argument("--model", default="phantom", help="model id or model folder (default: phantom)")
    gen.add_argument("-n", type=int, default=1, help="number of cases (default 1)")
    gen.add_argument("--seed", type=int, default=0, help="run seed; case seeds derive from it (default 0)")
    gen.add_argument("--out", type=Path, required=True, help="new or empty output folder")
    gen.add_argument(
        "--channels",
        default="t1,t1ce,t2,flair,seg",
        help=f"comma-separated subset of {','.join(ALL_CHANNELS)} (default t1,t1ce,t2,flair,seg)",
    )
    gen.add_argument("--layout", choices=("brats", "nnunet"), default="brats", help="folder layout (default brats)")
    gen.add_argument("--shape", type=_triple(int, "--shape"), help="voxels X,Y,Z (or one number for a cube)")
    gen.add_argument("--spacing", type=_triple(float, "--spacing"), help="voxel size in mm, X,Y,Z or one number")
    gen.add_argument("--no-tumour", action="store_true", help="healthy brains, empty label maps")
    gen.add_argument("--device", default=None, help="auto (default: cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    gen.add_argument("--quiet", action="store_true", help="no progress bar; print only the output folder")
    return parser


def _cmd_models(args: argparse.Namespace) -> int:
    from .registry import default_registry

    rows = default_registry().describe()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = f"{'id':<24} {'kind':<12} {'channels':<28} {'shape':<14} {'spacing (mm)':<14} weights"
    print(header)
    for row in rows:
        if "error" in row:
            print(f"{row['id']:<24} unavailable: {row['error']}")
            continue
        shape = "x".join(str(s) for s in row["shape"])
        spacing = "x".join(f"{s:g}" for s in row["spacing"])
        print(f"{row['id']:<24} {row['kind']:<12} {','.join(row['channels']):<28} {shape:<14} {spacing:<14} {row['weights']}")
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from .generate import GenerateRequest, generate_set
    from .progress import ProgressBar
    from .registry import default_registry

    request = GenerateRequest(
        model=args.model,
        n=args.n,
        seed=args.seed,
        out=args.out,
        channels=args.channels,
        layout=args.layout,
        shape=args.shape,
        spacing=args.spacing,
        tumour=not args.no_tumour,
        device=args.device,
    )
    request.validate()
    out = generate_set(request, default_registry(), progress=ProgressBar("Generating", quiet=args.quiet))
    if args.quiet:
        print(out)
    else:
        print(f"Wrote {request.n} case(s) to {out}")
        print(f"Open a case in 3D Slicer (File > Add Data) or any NIfTI viewer; {out / 'manifest.json'} describes the set.")
    return 0


COMMANDS = {"models": _cmd_models, "generate": _cmd_generate}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except MedSynthError as exc:
        print(f"medsynth: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("medsynth: interrupted; nothing was written.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
