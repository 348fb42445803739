"""``medsynth progress``: a longitudinal series of one case: tumour growth or atrophy at the asked months."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import MedSynthError


def _months(text: str) -> list[float]:
    try:
        return [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--months '{text}' is not a comma-separated list of numbers") from None


def _point(text: str) -> list[float]:
    parts = [p for p in text.split(",") if p.strip()]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        values = []
    if len(values) != 3:
        raise argparse.ArgumentTypeError(f"--seed-point needs three numbers X,Y,Z (RAS mm), not '{text}'")
    return values


def _rates(items: list[str]) -> dict[str, float]:
    rates = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            rates[name.strip()] = float(value)
        except ValueError:
            raise MedSynthError(f"--rate '{item}' is not REGION=PERCENT_PER_YEAR, e.g. cortex=-2.5.") from None
    return rates


def add_parser(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("progress", help="a longitudinal series of one case: tumour growth or atrophy over months")
    cmd.add_argument("--case", type=Path, required=True, help="BraTS-style case folder (<case>/<case>_t1.nii.gz ..., seg for growth)")
    cmd.add_argument("--model", choices=("growth", "atrophy"), required=True, help="growth (Fisher-Kolmogorov) or atrophy (prescribed Jacobian)")
    cmd.add_argument("--months", type=_months, default=[0.0, 3.0, 6.0, 12.0], help="time points in months (default 0,3,6,12)")
    cmd.add_argument("--out", type=Path, required=True, help="new or empty folder for the series")
    cmd.add_argument("--seed-point", type=_point, help="growth: start a tumour at this RAS point (mm) instead of the case's seg")
    cmd.add_argument("--d-grey", type=float, default=0.13, help="growth: grey-matter diffusivity, mm^2/day (default 0.13)")
    cmd.add_argument("--white-grey-ratio", type=float, default=5.0, help="growth: white/grey diffusivity ratio (default 5)")
    cmd.add_argument("--rho", type=float, default=0.012, help="growth: proliferation rate per day (default 0.012)")
    cmd.add_argument("--mass-effect", type=float, default=0.5, help="growth: share of new core volume that displaces tissue (default 0.5)")
    cmd.add_argument("--profile", choices=("ageing", "alzheimer"), default="alzheimer", help="atrophy: default rates (default alzheimer)")
    cmd.add_argument("--rate", action="append", default=[], metavar="REGION=PCT", help="atrophy: override a region's %% volume change per year")
    cmd.add_argument("--margin-mm", type=float, default=8.0, help="growth: voxels change only this close to the tumour (default 8)")
    cmd.add_argument("--render", choices=("auto", "contrast", "inpaint"), default="auto",
                     help="growth: how the tumour looks: contrast (the phantom's model), inpaint (a mask-conditioned model, "
                     "as add-tumour), auto (contrast on phantom cases, inpaint on real scans; default)")
    cmd.add_argument("--tumour-model", default="ldm3d-phantom", help="growth with inpaint: the model (default ldm3d-phantom)")
    cmd.add_argument("--steps", type=int, help="growth with inpaint: sampling steps (default: the model's)")
    cmd.add_argument("--device", help="growth with inpaint: cpu, cuda, cuda:N or mps (default: the best there is)")
    cmd.add_argument("--seed", type=int, default=0, help="seed of the texture noise inside the tumour (default 0)")
    cmd.add_argument("--quiet", action="store_true", help="print only the series folder")


def run(args: argparse.Namespace) -> int:
    from ..progress import ProgressBar
    from ..progression.growth import GrowthParams
    from ..progression.series import ProgressRequest, run_progress

    request = ProgressRequest(
        case=args.case,
        model=args.model,
        months=args.months,
        out=args.out,
        growth=GrowthParams(
            d_grey_mm2_per_day=args.d_grey, white_grey_ratio=args.white_grey_ratio, rho_per_day=args.rho,
            mass_effect=args.mass_effect, seed_point_mm=args.seed_point,
        ),
        profile=args.profile,
        rates=_rates(args.rate),
        margin_mm=args.margin_mm,
        seed=args.seed,
        renderer=args.render,
        tumour_model=args.tumour_model,
        steps=args.steps,
        device=args.device,
    )
    bar = ProgressBar("Progressing", quiet=args.quiet)
    out = run_progress(request, progress=lambda fraction, message: bar(int(round(fraction * 100)), 100))
    if args.quiet:
        print(out)
    else:
        print(f"Wrote a {args.model} series of {len(request.months)} time point(s) to {out}; {out / 'manifest.json'} describes it.")
    return 0
