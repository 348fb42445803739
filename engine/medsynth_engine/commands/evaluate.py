"""``medsynth evaluate``: metrics.json and a self-contained report.html comparing a synthetic set with a real one."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from ..cli import optional_channels
from ..models.slices2d.options import DEFAULT_SLICES_PER_CASE

if TYPE_CHECKING:
    from ..evaluate.sets import CaseSet


def add_parser(sub: argparse._SubParsersAction) -> None:
    ev = sub.add_parser(
        "evaluate",
        help="quality, diversity and memorisation of a synthetic set against a real one (metrics.json + report.html)",
        description="Compare a synthetic set with the real set: MS-SSIM diversity, MMD and Fréchet distance on "
        "radiomics-style features, the memorisation audit, figures; with --tstr also train-on-synthetic/test-on-real Dice. "
        "Sets of 2D slices (single-slice NIfTI, as the 2D families write them) are evaluated in 2D; a 3D real set is then "
        "cut into slices as the 2D training cuts it (--slices-per-case).",
    )
    source = ev.add_mutually_exclusive_group(required=True)
    source.add_argument("--synthetic", type=Path, help="the synthetic set")
    source.add_argument("--model", help="a model id or model folder (e.g. from finetune) to sample and evaluate instead of a set")
    ev.add_argument("-n", type=int, help="with --model: cases to sample (default: as many as the real set has; for a 2D model and "
                    "a 3D real set, its cases times --slices-per-case)")
    ev.add_argument("--real", type=Path, required=True, help="the real (training) set; BraTS-style, nnU-Net or plain folder")
    ev.add_argument("--out", type=Path, required=True, help="new or empty folder for metrics.json, report.html, figures/")
    ev.add_argument("--channels", help="image channels to compare, e.g. t1,flair (default: all, which must match)")
    ev.add_argument("--grid", type=int, default=64, help="largest side of the evaluation grid in voxels (default 64)")
    ev.add_argument("--diversity-cases", type=int, default=16, help="cases per set for pairwise MS-SSIM (default 16)")
    ev.add_argument("--audit-threshold", type=float, default=0.5, help="memorisation audit threshold (default 0.5)")
    ev.add_argument("--tstr", action="store_true", help="also train segmenters on synthetic, real and an independent real set; test on held-out real")
    ev.add_argument("--tstr-steps", type=int, default=1000, help="training steps per model (default 1000: about 10 minutes each on one CPU core, seconds on a GPU)")
    ev.add_argument("--tstr-grid", type=int, default=64, help="TSTR grid side, a multiple of 8 (default 64)")
    ev.add_argument("--tstr-spacing", type=float, default=3.0, help="TSTR voxel size in mm (default 3)")
    ev.add_argument("--tstr-patch", type=int, default=32, help="training patch side (default 32; swinunetr: a multiple of 32, at least 64)")
    ev.add_argument("--tstr-seeds", type=int, default=3, help="seeds, each its own split and initialisation (default 3)")
    ev.add_argument("--segmenter", choices=("unet", "swinunetr"), default="unet", help="TSTR segmenter family (default unet)")
    ev.add_argument("--seed", type=int, default=0, help="first seed of the TSTR splits, initialisation and batches (default 0)")
    ev.add_argument("--slices-per-case", type=int, default=DEFAULT_SLICES_PER_CASE,
                    help=f"2D synthetic slices against a 3D real set: axial slices kept of each real volume, those with the most "
                    f"head and tumour, as the 2D training keeps them (default {DEFAULT_SLICES_PER_CASE})")
    ev.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..evaluate.sliced import check_slices_per_case
    from ..progress import ProgressBar

    channels = optional_channels(args.channels)
    check_slices_per_case(args.slices_per_case)  # before any sampling
    if args.model is not None:
        from ..evaluate.sets import open_set
        from .sample_model import sampled_set

        n = args.n or _default_samples(args.model, open_set(args.real, "real", channels), args.slices_per_case)
        with sampled_set(args.model, n, args.seed, args.out, progress=ProgressBar(f"Sampling {args.model}", quiet=args.quiet)) as synthetic:
            return _evaluate(args, synthetic, channels)
    return _evaluate(args, args.synthetic, channels)


def _evaluate(args: argparse.Namespace, synthetic: Path, channels: tuple[str, ...] | None) -> int:
    from ..cohort.summary import rows_text
    from ..evaluate.run import EvaluateRequest, run_evaluation
    from ..evaluate.tstr import TstrSettings
    from ..progress import ProgressBar

    request = EvaluateRequest(
        synthetic=synthetic,
        real=args.real,
        out=args.out,
        channels=channels,
        grid=args.grid,
        diversity_cases=args.diversity_cases,
        audit_threshold=args.audit_threshold,
        tstr=args.tstr,
        tstr_grid=args.tstr_grid,
        tstr_spacing=args.tstr_spacing,
        tstr_settings=TstrSettings(steps=args.tstr_steps, patch=args.tstr_patch, segmenter=args.segmenter, seeds=args.tstr_seeds, seed=args.seed),
        slices_per_case=args.slices_per_case,
    )
    out = run_evaluation(request, progress=ProgressBar("Evaluating", quiet=args.quiet))
    cohort = json.loads((out / "metrics.json").read_text()).get("cohort")
    if cohort:  # a cohort set: what was asked against what the set holds, as generate printed it
        print("\n".join(rows_text(cohort)))
    print(f"Wrote {out / 'metrics.json'} and {out / 'report.html'}")
    return 0


def _default_samples(model: str, real: CaseSet, slices_per_case: int) -> int:
    """As many samples as the real set will have cases in the evaluation: its slices when a 2D model meets volumes."""
    from ..evaluate.planar import set_dims
    from ..registry import default_registry

    if default_registry().family_for(model).capabilities.dims == 2 and set_dims(real) == 3:
        return len(real) * slices_per_case
    return len(real)
