"""``medsynth finetune``: train a model of any installed family on a folder of scans, or continue a trained one.

The shared flags are written here; each family's own flags are derived from its trainer's options dataclass."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from ..contract import OptionSpec
from ..registry import default_registry
from ..training.request import FinetuneRequest, family_options


def add_parser(sub: argparse._SubParsersAction) -> None:
    registry = default_registry()
    trainable = ", ".join(f.name for f in registry.families() if f.trainer)
    p = sub.add_parser(
        "finetune",
        help=f"train or fine-tune a model ({trainable}) on a BraTS-style, nnU-Net raw or plain NIfTI folder",
        description=f"Train a model from scratch (--model {trainable}) or continue a trained model "
        "(a shipped model id, or a model folder) on your scans. OUT becomes a model folder that "
        "`medsynth generate --model OUT` (generators) or `medsynth add-channel --model OUT` (channel models) uses.",
    )
    p.add_argument("--model", required=True, help=f"{trainable} (new model), a shipped model id, or a model folder")
    p.add_argument("--data", type=Path, required=True, help="BraTS-style folder, nnU-Net v2 raw dataset, or folder of .nii.gz")
    p.add_argument("--out", type=Path, required=True, help="model folder to write (new or empty; with --resume, the run's folder)")
    p.add_argument("--channels", default=None, help="channels to learn, e.g. t1,t2,seg or t1 (default: the base's, else all present)")
    p.add_argument("--resolution", type=int, default=None, help="cube side, power of two (default 64 new, else the base's)")
    p.add_argument("--spacing", type=float, default=None, help="voxel size in mm (default: 192 mm field of view / resolution)")
    p.add_argument("--steps", type=int, default=None,
                   help="training steps over all stages (default 1000; with --resume the run's own, or more to extend it)")
    p.add_argument("--batch-size", type=int, default=4, help="global batch, split over --nproc (default 4)")
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints and mosaics (default 100)")
    p.add_argument("--log-every", type=int, default=10, help="steps between lines of loss.jsonl (default 10)")
    p.add_argument("--width", type=int, default=None, help="network width of a new model (default: the family's, e.g. 128 for pgan3d, 16 for seg and mr2ct)")
    p.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--nproc", type=int, default=1, help="training processes (gloo on CPU, NCCL on GPUs; default 1)")
    p.add_argument("--skip-bad", action="store_true", help="train on the good cases and report the bad ones")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (faster on recent GPUs)")
    p.add_argument("--description", default=None, help="training-data description for the model card (default: counts and layout)")
    p.add_argument("--licence", default=None, help="licence of the weights for the model card (default: the data owner's terms)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--quiet", action="store_true", help="print only the model folder")
    families = p.add_argument_group("options of one model family (derived from each installed family's trainer)")
    for spec in family_options(registry):
        _add_option(families, spec)


def _add_option(group: argparse._ArgumentGroup, spec: OptionSpec) -> None:
    """A family's training option as a flag: its type, choices and default say how it parses."""
    owners = ", ".join(spec.families)
    if spec.type is bool:
        action = "store_false" if spec.default is True else "store_true"
        text = f"{owners}: switch off: {spec.help}" if spec.default is True else f"{owners}: {spec.help}"
        group.add_argument(spec.flag, dest=spec.name, action=action, default=None, help=text)
        return
    default = f"; default {spec.default}" if spec.default is not None else ""
    group.add_argument(spec.flag, dest=spec.name, type=spec.type, choices=spec.choices, default=None, help=f"{owners}: {spec.help}{default}")


class _Printer:
    """Progress on stderr: one updating line for steps, a new line for messages."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, info: dict) -> None:
        if self.quiet:
            return
        losses = info.get("losses")
        if losses:
            eta = info.get("eta_s")
            values = "  ".join(f"{name} {value:+.3f}" for name, value in losses.items() if isinstance(value, int | float))
            text = f"\rstep {info['step']}/{info['total']}  {info.get('stage', ''):<22} {values}  ETA {eta or 0:6.0f}s"
            sys.stderr.write(text)
            if info["step"] >= info["total"]:
                sys.stderr.write("\n")
        elif info.get("message"):
            sys.stderr.write(f"\r{info['message']}\n")
        sys.stderr.flush()


def _usage(out) -> str:
    """The command that uses the trained model: channel models add channels, the others generate."""
    channel = default_registry().family_for(str(out)).capabilities.channel
    if channel:
        return f"medsynth add-channel --channel {channel} --model {out} --case CASE"
    return f"medsynth generate --model {out} -n 5 --out SET"


def run(args: argparse.Namespace) -> int:
    from ..training.finetune import run_finetune

    shared = {f.name for f in fields(FinetuneRequest)} - {"options"}
    values = {name: value for name, value in vars(args).items() if name in shared}
    options = {spec.name: getattr(args, spec.name) for spec in family_options() if getattr(args, spec.name, None) is not None}
    request = FinetuneRequest(**values, options=options)
    try:
        out = run_finetune(request, progress=_Printer(args.quiet))
    except KeyboardInterrupt:
        from ..training.checkpoint import read_state

        if read_state(request.out) is None:
            raise  # nothing to continue from: the usual one line
        print(f"\nmedsynth: interrupted; add --resume to the same command to continue from the last checkpoint in {request.out}.",
              file=sys.stderr)
        return 130
    if args.quiet:
        print(out)
    else:
        print(f"Model folder: {out}  (use it with: {_usage(out)})")
    return 0
