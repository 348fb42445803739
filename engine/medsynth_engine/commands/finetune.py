"""``medsynth finetune``: train a model (pgan3d, seg, mr2ct, ldm3d) on a folder of scans, or continue a trained one."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="train or fine-tune a model (pgan3d, seg, mr2ct, ldm3d) on a BraTS-style, nnU-Net raw or plain NIfTI folder",
        description="Train a model from scratch (--model pgan3d, seg, mr2ct or ldm3d) or continue a trained model "
        "(a shipped id such as pgan3d-phantom, or a model folder) on your scans. OUT becomes a model folder that "
        "`medsynth generate --model OUT` (generators) or `medsynth add-channel --model OUT` (seg, mr2ct) uses.",
    )
    p.add_argument("--model", required=True, help="pgan3d, seg, mr2ct or ldm3d (new model), a shipped model id, or a model folder")
    p.add_argument("--data", type=Path, required=True, help="BraTS-style folder, nnU-Net v2 raw dataset, or folder of .nii.gz")
    p.add_argument("--out", type=Path, required=True, help="model folder to write (new or empty; with --resume, the run's folder)")
    p.add_argument("--channels", default=None, help="channels to learn, e.g. t1,t2,seg or t1 (default: the base's, else all present)")
    p.add_argument("--resolution", type=int, default=None, help="cube side, power of two (default 64 new, else the base's)")
    p.add_argument("--spacing", type=float, default=None, help="voxel size in mm (default: 192 mm field of view / resolution)")
    p.add_argument("--steps", type=int, default=1000, help="training steps over all stages (default 1000)")
    p.add_argument("--batch-size", type=int, default=4, help="global batch, split over --nproc (default 4)")
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between checkpoints and mosaics (default 100)")
    p.add_argument("--log-every", type=int, default=10, help="steps between lines of loss.jsonl (default 10)")
    p.add_argument("--freeze-stages", type=int, default=0, help="keep the base generator's first N stages fixed (default 0)")
    p.add_argument("--width", type=int, default=None, help="network width at 4^3 for a new model (default 128)")
    p.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    p.add_argument("--stage", default=None, help="ldm3d: autoencoder or diffusion; mr2ct: adversarial (default: the next one due)")
    p.add_argument(
        "--latent-downsample", type=int, default=None, choices=(2, 4, 8),
        help="ldm3d, new model: latent grid side = volume side / this (default 4; 2 below 32^3); 2 keeps small structures",
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--nproc", type=int, default=1, help="training processes (gloo on CPU, NCCL on GPUs; default 1)")
    p.add_argument("--skip-bad", action="store_true", help="train on the good cases and report the bad ones")
    p.add_argument("--no-augment", action="store_true", help="switch off DiffAugment (on by default)")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (faster on recent GPUs)")
    p.add_argument("--grad-checkpoint", action="store_true", help="recompute generator blocks in the backward pass: less memory")
    p.add_argument("--description", default=None, help="training-data description for the model card (default: counts and layout)")
    p.add_argument("--licence", default=None, help="licence of the weights for the model card (default: the data owner's terms)")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--quiet", action="store_true", help="print only the model folder")


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
    from ..training.families import family_of

    family = family_of(str(out))
    if family in ("seg", "mr2ct"):
        channel = "seg" if family == "seg" else "ct"
        return f"medsynth add-channel --channel {channel} --model {out} --case CASE"
    return f"medsynth generate --model {out} -n 5 --out SET"


def run(args: argparse.Namespace) -> int:
    from ..training.finetune import FinetuneRequest, run_finetune

    request = FinetuneRequest(
        model=args.model,
        data=args.data,
        out=args.out,
        channels=args.channels,
        resolution=args.resolution,
        steps=args.steps,
        batch_size=args.batch_size,
        resume=args.resume,
        nproc=args.nproc,
        skip_bad=args.skip_bad,
        device=args.device,
        checkpoint_every=args.checkpoint_every,
        log_every=args.log_every,
        freeze_stages=args.freeze_stages,
        seed=args.seed,
        spacing=args.spacing,
        width=args.width,
        augment=not args.no_augment,
        amp=args.amp,
        grad_checkpoint=args.grad_checkpoint,
        stage=args.stage,
        latent_downsample=args.latent_downsample,
        description=args.description,
        licence=args.licence,
    )
    out = run_finetune(request, progress=_Printer(args.quiet))
    if args.quiet:
        print(out)
    else:
        print(f"Model folder: {out}  (use it with: {_usage(out)})")
    return 0
