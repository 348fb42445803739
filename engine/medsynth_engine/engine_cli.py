"""The ``medsynth-engine`` command: the engine process's own entry point.

``medsynth-engine info`` prints one JSON object (version, device, models) so that a launcher can check
an interpreter before relying on it. ``medsynth-engine serve`` runs the HTTP service (``serve.py``, ``server.py``).
"""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__
from .errors import MedSynthError

__all__ = ["main"]


def _cmd_info(args: argparse.Namespace) -> int:
    import torch

    from .device import select_device
    from .registry import default_registry

    device = select_device(args.device)
    info = {
        "version": __version__,
        "torch": torch.__version__,
        "device": str(device),
        "models": default_registry().describe(),
    }
    print(json.dumps(info))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medsynth-engine", description="The MedSynth engine process.")
    parser.add_argument("--version", action="version", version=f"medsynth-engine {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    info = sub.add_parser("info", help="print version, device and models as one JSON object")
    info.add_argument("--device", default=None)
    info.set_defaults(func=_cmd_info)
    from .serve import add_serve_parser

    add_serve_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MedSynthError as exc:
        print(f"medsynth-engine: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
