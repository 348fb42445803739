"""The ``medsynth`` command: everything MedSynth does, without Slicer.

Errors the user can fix are one sentence on stderr and exit code 2; nothing is left half-written.
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys

from . import __version__
from .errors import MedSynthError

__all__ = ["main", "build_parser", "triple", "optional_channels", "SUBCOMMANDS"]

#: Modules under medsynth_engine.commands, in the order ``medsynth --help`` lists them.
SUBCOMMANDS: tuple[str, ...] = (
    "models",
    "generate",
    "export",
    "finetune",
    "audit",
    "evaluate",
    "reader-study",
    "add-tumour",
    "add-channel",
    "clean",
    "progress",
    "prepare",
)

EXIT_USAGE = 2


def triple(kind: type, what: str):
    def parse(text: str) -> tuple:
        parts = [p for p in text.replace("x", ",").split(",") if p.strip()]
        if len(parts) == 1:
            parts = parts * 3
        if len(parts) != 3:
            raise argparse.ArgumentTypeError(f"{what} needs one value or three (X,Y,Z), not '{text}'")
        try:
            values = tuple(kind(p) for p in parts)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} '{text}' is not a list of numbers") from None
        return values

    return parse


def optional_channels(text: str | None) -> tuple[str, ...] | None:
    """A ``--channels`` value parsed into canonical channel names (None when not given); bad names are one sentence."""
    from MedSynthLib.conventions import parse_channels

    if not text:
        return None
    try:
        return parse_channels(text)
    except ValueError as exc:
        raise MedSynthError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medsynth", description="Synthetic 3D brain MRI with tumour labels.")
    parser.add_argument("--version", action="version", version=f"medsynth {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"medsynth_engine.commands.{name.replace('-', '_')}")
        module.add_parser(sub)
        sub.choices[name].set_defaults(run=module.run)
    return parser


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # unwinds through the writers, which remove their temporary folders


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.run(args)
    except MedSynthError as exc:
        print(f"medsynth: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("medsynth: interrupted; nothing was written.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
