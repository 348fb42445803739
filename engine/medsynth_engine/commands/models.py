"""``medsynth models``: list the models this installation can run."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="list the models this installation can run")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from ..registry import default_registry

    rows = default_registry().describe()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    header = f"{'id':<24} {'kind':<12} {'channels':<28} {'shape':<14} {'spacing (mm)':<14} weights"
    print(header)
    for row in rows:
        if "error" in row:
            print(f"{row['id']:<24} unavailable: {row['error']}")
            continue
        shape = "x".join(str(s) for s in row["shape"])
        spacing = "x".join(f"{s:g}" for s in row["spacing"])
        print(f"{row['id']:<24} {row['kind']:<12} {','.join(row['channels']):<28} {shape:<14} {spacing:<14} {row['weights']}")
    return 0
