"""``medsynth generate``: a synthetic set written as anonymised NIfTI."""

from __future__ import annotations

import argparse
from pathlib import Path

from MedSynthLib.conventions import ALL_CHANNELS

from ..cli import triple


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    gen.add_argument("--shape", type=triple(int, "--shape"), help="voxels X,Y,Z (or one number for a cube)")
    gen.add_argument("--spacing", type=triple(float, "--spacing"), help="voxel size in mm, X,Y,Z or one number")
    gen.add_argument("--no-tumour", action="store_true", help="healthy brains, empty label maps")
    gen.add_argument("--device", default=None, help="auto (default: cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    gen.add_argument("--quiet", action="store_true", help="no progress bar; print only the output folder")
    gen.add_argument("--engine", metavar="URL", help="run the job on the engine at URL instead of in this process")
    gen.add_argument("--token-file", type=Path, help="the engine's token file (default: the default state folder's)")


def run(args: argparse.Namespace) -> int:
    if args.engine:
        from ..jobs.remote import run_generate_on_engine

        return run_generate_on_engine(args)
    from ..generate import GenerateRequest, generate_set
    from ..progress import ProgressBar
    from ..registry import default_registry

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
