"""``medsynth clean OUT``: remove what unfinished runs into OUT left beside it (hidden temporary folders)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import MedSynthError


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("clean", help="remove the temporary folders interrupted generate or export runs into OUT left")
    parser.add_argument("out", type=Path, metavar="OUT", help="the --out folder of the interrupted run (it is never touched)")


def run(args: argparse.Namespace) -> int:
    from ..journal import clean

    out = Path(args.out).expanduser().absolute()
    try:
        removed = clean(out)
    except OSError as exc:
        raise MedSynthError(f"Could not remove the temporary folders beside {out} ({exc.strerror or exc}).") from None
    if not removed:
        print(f"Nothing to clean: no unfinished run into {out} left a temporary folder.")
    for folder, finished in removed:
        print(f"Removed {folder} ({finished} finished case(s)).")
    return 0
