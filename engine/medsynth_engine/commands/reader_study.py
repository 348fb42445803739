"""``medsynth reader-study``: a blinded, shuffled set of real and synthetic cases, with the answer key kept apart;
``--score`` scores a reader's answers against the key."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cli import optional_channels
from ..errors import MedSynthError


def add_parser(sub: argparse._SubParsersAction) -> None:
    rs = sub.add_parser(
        "reader-study",
        help="make a blinded real-vs-synthetic reader study (or score a reader's answers)",
        description="Write N cases, half real and half synthetic, shuffled and on one grid, under meaningless ids into OUT; "
        "the answer key goes beside OUT (OUT-answer-key.json), never inside it. Readers answer in the MedSynth panel's "
        "Reader Study section; --score RESPONSES --key KEY prints their accuracy.",
    )
    rs.add_argument("--real", type=Path, help="the real set")
    rs.add_argument("--synthetic", type=Path, help="the synthetic set")
    rs.add_argument("-n", type=int, help="number of cases in the study (half real, half synthetic)")
    rs.add_argument("--out", type=Path, help="new or empty study folder to hand to readers")
    rs.add_argument("--key", type=Path, help="where to write the answer key (default: beside OUT)")
    rs.add_argument("--seed", type=int, help="seed of the draw and the shuffle (default: random)")
    rs.add_argument("--channels", help="image channels to show (default: all, which must match)")
    rs.add_argument("--grid", type=int, default=128, help="largest side of the common grid in voxels (default 128)")
    rs.add_argument("--score", type=Path, metavar="RESPONSES", help="score this responses file (from the panel) against --key")


def run(args: argparse.Namespace) -> int:
    if args.score:
        return _score(args)
    from ..evaluate.reader_study import ReaderStudyRequest, make_reader_study

    missing = [flag for flag, value in (("--real", args.real), ("--synthetic", args.synthetic), ("-n", args.n), ("--out", args.out)) if value is None]
    if missing:
        raise MedSynthError(f"Making a reader study needs {', '.join(missing)}.")
    channels = optional_channels(args.channels)
    request = ReaderStudyRequest(
        real=args.real, synthetic=args.synthetic, n=args.n, out=args.out, key=args.key, seed=args.seed, channels=channels, grid=args.grid
    )
    out, key = make_reader_study(request)
    print(f"Wrote the blinded study to {out}; hand that folder to readers.")
    print(f"The answer key is {key}: keep it away from readers.")
    return 0


def _score(args: argparse.Namespace) -> int:
    from MedSynthLib.reader_study import ReaderSession, ReaderStudyError, score

    if args.key is None:
        raise MedSynthError("--score needs the answer key: add --key KEY.")
    try:
        responses = json.loads(Path(args.score).read_text())
        study = Path(args.score).absolute().parent
        session = ReaderSession(study, str(responses.get("reader", "reader")), responses=args.score)
        result = score(session, args.key)
    except (OSError, ValueError, AttributeError):
        raise MedSynthError(f"{args.score} is not a readable responses file from a reader study folder.") from None
    except ReaderStudyError as exc:
        raise MedSynthError(str(exc)) from None
    print(json.dumps(result, indent=2))
    return 0
