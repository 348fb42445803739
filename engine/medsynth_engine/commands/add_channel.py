"""``medsynth add-channel``: add a tumour segmentation or a CT channel to a case, on the case's own grid."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "add-channel",
        help="add a seg (tumour labels) or ct channel to a case folder or NIfTI file",
        description="Predict a channel for an existing case (generated or real) and write <case>_seg.nii.gz "
        "(+ <case>_seg.seg.nrrd for Slicer) or <case>_ct.nii.gz on exactly the case's grid. "
        "Channel models: `medsynth models`.",
    )
    p.add_argument("--channel", required=True, choices=("seg", "ct"), help="seg (BraTS tumour labels) or ct (HU)")
    p.add_argument("--case", type=Path, required=True, help="BraTS-style case folder or one NIfTI file (t1 unless named _t1ce/_t2/_flair)")
    p.add_argument("--model", default=None, help="channel model id or folder (default: seg-phantom / mr2ct-phantom)")
    p.add_argument("--out", type=Path, default=None, help="folder to write into (default: the case's folder)")
    p.add_argument("--replace", action="store_true", help="overwrite an existing channel of that name")
    p.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    p.add_argument("--amp", choices=("auto", "on", "off"), default="auto", help="bf16 fast path: auto (GPU only, default), on, off (eager fp32)")
    mask = p.add_mutually_exclusive_group()
    mask.add_argument("--brain-mask", type=Path, default=None,
                      help="brain mask on the case's grid: the input is brain-extracted with it and seg labels stay inside "
                      "(default for seg: the case's own <case>_mask.nii.gz, as medsynth prepare writes it, when there is one; "
                      "for ct none, as the skull a whole-head MR shows is what a CT is made of)")
    mask.add_argument("--no-brain-mask", action="store_true", help="ignore the case's brain mask: the model sees the whole head")
    p.add_argument("--n4", choices=("auto", "on", "off"), default="auto",
                   help="N4 bias-field correction of each input sequence before the model: auto (default: on for seg, "
                   "off for ct), on, off")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from ..addchannel import AddChannelRequest, add_channel, outcome_sentence

    request = AddChannelRequest(
        case=args.case,
        channel=args.channel,
        model=args.model,
        out=args.out,
        replace=args.replace,
        device=args.device,
        amp={"auto": None, "on": True, "off": False}[args.amp],
        brain_mask=args.brain_mask,
        no_brain_mask=args.no_brain_mask,
        n4={"auto": None, "on": True, "off": False}[args.n4],
    )

    live = sys.stderr.isatty() and not args.json

    def progress(fraction: float, message: str) -> None:
        if live:
            sys.stderr.write(f"\r{fraction:4.0%} {message:<70}")
            sys.stderr.flush()

    try:
        result = add_channel(request, progress=progress)
    except BaseException:
        if live:
            sys.stderr.write("\n")  # the error starts on a line of its own
        raise
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        if live:
            sys.stderr.write("\n")
        inside = f" inside the brain mask {result['brain_mask']}" if result.get("brain_mask") else ""
        corrected = " (N4-corrected)" if result.get("n4") else ""
        print(f"{result['channel']} from {', '.join(result['inputs'])}{corrected}{inside} by {result['model']}: " + ", ".join(result["written"]))
        if "tumour_found" in result:
            print(outcome_sentence(result))
    return 0
