"""``medsynth prepare``: hospital DICOM studies or NIfTI folders in, BraTS-style cases (with ``_mask``) out."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "prepare",
        help="turn DICOM studies or NIfTI folders into co-registered, skull-stripped BraTS-style cases",
        description="Read a PACS export (DICOM, any nesting) or NIfTI folders, classify the series, co-register every "
        "sequence to the T1ce (rigid, mutual information), fit the MNI152 2009 atlas (affine), resample once to a 1 mm "
        "grid, skull-strip, and write <case>/<case>_t1|t1ce|t2|flair|mask.nii.gz with transforms and a QC mosaic. "
        "Nothing is downloaded; no DICOM value reaches the output.",
    )
    p.add_argument("--input", type=Path, required=True, help="folder of DICOM files or NIfTI files")
    p.add_argument("--out", type=Path, required=True, help="new or empty output folder")
    p.add_argument("--atlas", choices=("mni152", "none"), default="mni152", help="mni152 (default) or none (native space of the reference)")
    p.add_argument("--skull-strip", choices=("auto", "model", "atlas", "none"), default="auto",
                   help="auto (deepbet if installed, else atlas), model (deepbet), atlas (offline fallback) or none")
    p.add_argument("--n4", action="store_true", help="N4 bias-field correction before registration")
    p.add_argument("--sequences", type=Path, default=None, help='JSON map overriding classification, e.g. {"AX T1 POST": "t1ce", "3": "ignore"}')
    p.add_argument("--keep-key", type=Path, default=None, help="write which source study became which case here (0600; never inside --out)")
    p.add_argument("--spacing", type=float, default=1.0, help="output voxel size in mm (default 1, as BraTS)")
    p.add_argument("--device", default=None, help="device for the skull-stripping network: cpu (default), cuda, cuda:N or mps")
    p.add_argument("--skip-bad", action="store_true",
                   help="prepare what can be prepared and list broken files, series and studies (default: the first stops the run)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from ..prepare import PrepareRequest, prepare

    request = PrepareRequest(
        input=args.input, out=args.out, atlas=args.atlas, skull_strip=args.skull_strip, n4=args.n4,
        sequences=args.sequences, keep_key=args.keep_key, device=args.device, spacing_mm=args.spacing, skip_bad=args.skip_bad,
    )
    result = prepare(request)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        flagged = f", {len(result['flagged'])} flagged for review" if result["flagged"] else ""
        print(f"{len(result['cases'])} case(s) in {result['output_dir']}{flagged}; QC: {result['summary']}")
    if result["bad_skipped"]:
        print(f"medsynth prepare: {result['bad_skipped']} broken file(s), series or study/studies were skipped (named above, "
              f"listed in {result['summary']}).", file=sys.stderr)
    return 0
