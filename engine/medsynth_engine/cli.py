"""The ``medsynth`` command: everything MedSynth does, without Slicer.

Errors the user can fix are one sentence on stderr and exit code 2; nothing is left half-written.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys

from . import __version__
from .errors import MedSynthError
from .sharding import EXIT_PEER  # a worker of a multi-process run that stopped because another one failed

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
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what shells report for a writer whose reader closed the pipe


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
    """Run one command: a user error is one sentence and exit 2, Ctrl-C one line and 130, a closed stdout (``| head``) 141."""
    signal.signal(signal.SIGTERM, _terminate)
    try:
        args = build_parser().parse_args(argv)  # inside: Ctrl-C while torch is being imported ends quietly too
        code = args.run(args)
        sys.stdout.flush()  # a reader that went away is noticed here, not in the interpreter's exit
        return code
    except MedSynthError as exc:
        if getattr(exc, "quiet", False):  # a worker of several whose peer failed: that worker has said why
            return EXIT_PEER
        print(f"medsynth: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("medsynth: interrupted; nothing was written.", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return _stdout_closed()


def _stdout_closed() -> int:
    """The reader of stdout has gone (``medsynth models | head -1``): end quietly, as a tool killed by SIGPIPE would."""
    with contextlib.suppress(OSError, ValueError):  # ValueError: stdout is not a real file (a test capturing it)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the interpreter's final flush must not fail again
    return EXIT_BROKEN_PIPE


if __name__ == "__main__":
    sys.exit(main())
