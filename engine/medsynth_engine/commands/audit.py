"""``medsynth audit``: is any synthetic case a probable copy of a training case? Exit 0 none, 1 some, 2 bad input.

A 2D set (every case a single slice) is audited slice against training slice (``audit2d``), a 3D set case
against case (``evaluate.audit``); the report has the same shape either way and says which (``dimensions``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..cli import optional_channels
from ..errors import MedSynthError

EXIT_FLAGGED = 1


def add_parser(sub: argparse._SubParsersAction) -> None:
    audit = sub.add_parser(
        "audit",
        help="memorisation audit: flag synthetic cases that are probable copies of training cases",
        description="For every synthetic case, find its nearest training case (normalised cross-correlation over flips "
        "and small shifts) and score it against the typical distance between distinct training cases. "
        "A 2D set (single-slice cases) is compared slice by slice with every axial slice of the training cases. "
        "Exit code 0: no case flagged; 1: some flagged; 2: bad input.",
    )
    audit.add_argument("--synthetic", type=Path, required=True, help="the synthetic set (BraTS-style, nnU-Net or plain folder)")
    audit.add_argument("--train", type=Path, required=True, help="the training set the model saw (streamed, not loaded whole)")
    audit.add_argument("--json", type=Path, help="write the full audit (every case, nearest training case, score) here")
    audit.add_argument("--threshold", type=float, default=None, help="flag cases whose score reaches this (0-1, default 0.5)")
    audit.add_argument("--channels", help="image channels to compare, e.g. t1,flair (default: all, which must match)")
    audit.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..audit2d import audit_set
    from ..evaluate.audit import DEFAULT_THRESHOLD
    from ..evaluate.output import write_json
    from ..progress import ProgressBar

    channels = optional_channels(args.channels)
    threshold = DEFAULT_THRESHOLD if args.threshold is None else args.threshold
    if args.json and not Path(args.json).parent.is_dir():
        raise MedSynthError(f"The folder {Path(args.json).parent} for --json does not exist; create it first.")
    result = audit_set(args.synthetic, args.train, threshold=threshold, channels=channels, progress=ProgressBar("Auditing", quiet=args.quiet))
    flat = result.dimensions == 2
    if args.json:
        write_json(args.json, result.to_dict())
    for case in result.cases:
        mark = "PROBABLE COPY" if case["flagged"] else "ok"
        nearest = case["nearest_training_case"] + (f" slice {case['nearest_training_slice']}" if flat else "")
        print(f"{case['case']}  score {case['score']:+.3f}  NCC {case['ncc']:.4f}  nearest {nearest}  {mark}")
    n, unit = len(result.flagged), "slice" if flat else "case"
    print(f"{n} of {len(result.cases)} synthetic {unit}(s) flagged as probable copies (threshold {threshold}).")
    return EXIT_FLAGGED if n else 0
