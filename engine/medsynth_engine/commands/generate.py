"""``medsynth generate``: a synthetic set written as anonymised NIfTI."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from MedSynthLib.conventions import ALL_CHANNELS

from ..cli import triple
from ..errors import MedSynthError


def add_parser(sub: argparse._SubParsersAction) -> None:
    gen = sub.add_parser("generate", help="generate a synthetic set and write it as NIfTI")
    gen.add_argument("--model", default="phantom", help="model id or model folder (default: phantom)")
    gen.add_argument("-n", type=int, default=None, help="number of cases (default 1; a --cohort file sets its own counts)")
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
    gen.add_argument("--mask", type=Path, metavar="MASK", help="NIfTI tumour label map (BraTS codes) to follow (ldm3d models)")
    gen.add_argument(
        "--truncation", type=float, default=1.0, metavar="PSI",
        help="stylegan2d: pull each case's style towards the average by 1-PSI (0-1; default 1, none; 0: the average image)",
    )
    gen.add_argument(
        "--like", type=Path, metavar="CASE",
        help="stylegan2d: variations of the slice in this case folder (projected into W; --truncation sets how far they stray)",
    )
    gen.add_argument("--cohort", type=Path, metavar="FILE", help="cohort file (YAML or JSON strata with counts and constraints); replaces -n")
    gen.add_argument(
        "--balance",
        metavar="FACTORS",
        help="equal counts per stratum over -n cases: any of size, enhancing, hemisphere, tumour, comma-separated (crossed)",
    )
    gen.add_argument("--device", default=None, help="auto (default: cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    gen.add_argument(
        "--nproc", type=int, default=1, metavar="K",
        help="worker processes on this machine, each on its own GPU when on CUDA (default 1; across nodes: torchrun)",
    )
    gen.add_argument(
        "--audit-against",
        type=Path,
        metavar="DIR",
        help="training set to audit against: probable copies of its cases are left out (see medsynth audit)",
    )
    gen.add_argument("--audit-threshold", type=float, default=0.5, help="audit score that flags a case (0-1, default 0.5)")
    gen.add_argument("--resume", action="store_true", help="continue the interrupted run into --out (give its arguments again)")
    gen.add_argument("--discard", action="store_true", help="drop what an interrupted run into --out left, and start afresh")
    gen.add_argument("--quiet", action="store_true", help="no progress bar; print only the output folder")
    gen.add_argument("--engine", metavar="URL", help="run the job on the engine at URL instead of in this process")
    gen.add_argument("--token-file", type=Path, help="the engine's token file (default: the default state folder's)")


def run(args: argparse.Namespace) -> int:
    if args.nproc < 1:
        raise MedSynthError(f"--nproc must be at least 1, not {args.nproc}.")
    if args.engine and args.nproc > 1:
        raise MedSynthError("--nproc starts workers on this machine; an engine shares a job over its own --gpus, so leave out --nproc.")
    if args.engine:
        from ..jobs.remote import run_generate_on_engine

        return run_generate_on_engine(args)
    from ..generate import GenerateRequest, generate_set
    from ..journal import resume_hint
    from ..progress import ProgressBar
    from ..registry import default_registry
    from ..sharding import World, fail_on_sigterm

    request = GenerateRequest(
        model=args.model,
        n=_count(args),
        seed=args.seed,
        out=args.out,
        channels=args.channels,
        layout=args.layout,
        shape=args.shape,
        spacing=args.spacing,
        tumour=not args.no_tumour,
        device=args.device,
        audit_against=args.audit_against,
        audit_threshold=args.audit_threshold,
        mask=args.mask,
        resume=args.resume,
        discard=args.discard,
        cohort=args.cohort,
        balance=args.balance,
        truncation=args.truncation,
        like=args.like,
    )
    request.validate()
    world = World.from_env()
    if world.size > 1 and args.nproc != 1:
        raise MedSynthError("Under torchrun, give the number of workers to torchrun (--nproc_per_node), not --nproc.")
    quiet = args.quiet or world.rank > 0
    bar = ProgressBar("Generating", quiet=quiet, header=device_line(args.device, max(args.nproc, world.size)))

    def resumed(kept: int, total: int) -> None:
        bar.throughput.started_from(kept)
        if not quiet:
            print(f"Continuing the interrupted run: {kept} of {total} case(s) were already complete and verified.", file=sys.stderr)

    try:
        if args.nproc > 1:
            from ..launch import run_workers

            out = run_workers(request, [None] * args.nproc, progress=bar, resumed=resumed)
        else:
            if world.size > 1:
                fail_on_sigterm(quiet=world.rank > 0)
            out = generate_set(request, default_registry(), progress=bar, resumed=resumed, world=world)
    except MedSynthError:
        bar.end_line()
        raise
    except KeyboardInterrupt:
        if world.rank == 0:
            print(f"\nmedsynth: interrupted; {resume_hint(request.out)}", file=sys.stderr)
        return 130
    if world.rank > 0:
        return 0
    if args.quiet:
        print(out)
    else:
        print(f"Wrote {_written(out, request.n)} case(s) to {out}")
        if request.cohort is not None or request.balance is not None:
            from ..cohort.summary import summary_lines

            print("\n".join(summary_lines(out / "manifest.json")))
        print(f"Open a case in 3D Slicer (File > Add Data) or any NIfTI viewer; {out / 'manifest.json'} describes the set.")
    return 0


def _count(args: argparse.Namespace) -> int:
    if args.cohort is not None and args.n is not None:
        raise MedSynthError(f"The cohort file {args.cohort} sets its own counts; leave out -n.")
    return 1 if args.n is None else args.n


def _written(out: Path, requested: int) -> str:
    """How many cases the set holds, and how many the audit left out."""
    import json

    audit = json.loads((out / "manifest.json").read_text()).get("audit")
    if not audit:
        return str(requested)
    left_out = len(audit["left_out"])
    return f"{requested - left_out} (the audit left out {left_out} probable cop{'y' if left_out == 1 else 'ies'})"


def device_line(requested: str | None, workers: int) -> str:
    """``Device: cuda:0 (NVIDIA ...)``: what the run will compute on, said before it starts (``make demo`` shows it)."""
    from ..device import describe_device

    text = describe_device(requested)
    return f"Device: {text}" + (f", {workers} worker processes (each on its own GPU when on CUDA)" if workers > 1 else "")
