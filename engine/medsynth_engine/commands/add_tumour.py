"""``medsynth add-tumour``: add a drawn tumour to an existing scan (generated or real) with an ldm3d model."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import MedSynthError


def add_parser(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser("add-tumour", help="add a tumour drawn as a label map to an existing case")
    cmd.add_argument("--case", type=Path, required=True, help="BraTS-style case folder (<case>/<case>_t1.nii.gz ...) or one NIfTI file")
    cmd.add_argument("--mask", type=Path, required=True, help="NIfTI label map: 1 necrosis, 2 oedema, 3 or 4 enhancing (any grid)")
    cmd.add_argument("--out", type=Path, required=True, help="new or empty folder for the new case")
    cmd.add_argument("--model", default=None, help="ldm3d model id or folder (default ldm3d-phantom)")
    cmd.add_argument("--seed", type=int, default=0, help="seed of the generated tumour (default 0)")
    cmd.add_argument("--margin-mm", type=float, default=8.0, help="voxels change only this close to the mask (default 8)")
    cmd.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    cmd.add_argument("--device", default=None, help="auto (default: cuda > mps > cpu), cpu, cuda, cuda:N or mps")
    cmd.add_argument("--quiet", action="store_true", help="print only the new case's folder")


def run(args: argparse.Namespace) -> int:
    from ..addtumour import DEFAULT_TUMOUR_MODEL, AddTumourRequest, add_tumour
    from ..progress import ProgressBar

    request = AddTumourRequest(
        case=args.case,
        mask=args.mask,
        out=args.out,
        model=args.model or DEFAULT_TUMOUR_MODEL,
        seed=args.seed,
        margin_mm=args.margin_mm,
        steps=args.steps,
        device=args.device,
    )
    bar = ProgressBar("Adding tumour", quiet=args.quiet)
    shown = []

    def progress(fraction: float, message: str) -> None:
        shown.append(fraction)
        bar(int(round(fraction * 100)), 100)

    try:
        result = add_tumour(request, progress=progress)
    except MedSynthError:
        if shown and shown[-1] < 1.0 and not args.quiet:
            sys.stderr.write("\n")  # end the progress line so the error stands on its own line
        raise
    if args.quiet:
        print(result["case"])
    else:
        print(f"Wrote {result['case']}: {result['changed_voxels']} voxel(s) changed within {result['margin_mm']:g} mm of the mask.")
    return 0
