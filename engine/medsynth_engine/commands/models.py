"""``medsynth models``: list the models this installation can run (generators, channel models) and the families."""

from __future__ import annotations

import argparse
import json


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="list the models this installation can run (generators and channel models)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from ..addchannel import channel_models
    from ..registry import default_registry

    registry = default_registry()
    rows = registry.describe()
    channel_rows = channel_models(registry)
    if args.json:
        print(json.dumps([{**row, "role": "generator"} for row in rows] + [{**row, "role": "channel"} for row in channel_rows], indent=2))
        return 0
    from ..device import describe_device

    print(f"Device: {describe_device(None)}; generate, finetune and the engine use it unless --device names another.\n")
    print("Generators (medsynth generate --model ID):")
    header = f"{'id':<24} {'kind':<12} {'channels':<28} {'shape':<14} {'spacing (mm)':<14} weights"
    print(header)
    for row in rows:
        if "error" in row:
            print(f"{row['id']:<24} unavailable: {row['error']}")
            continue
        shape = "x".join(str(s) for s in row["shape"])
        spacing = "x".join(f"{s:g}" for s in row["spacing"])
        print(f"{row['id']:<24} {row['kind']:<12} {','.join(row['channels']):<28} {shape:<14} {spacing:<14} {row['weights']}")
    _print_validity(rows)
    print("\nChannel models (medsynth add-channel --channel seg|ct --model ID):")
    print(f"{'id':<24} {'kind':<12} {'adds':<6} {'from':<28} {'spacing (mm)':<14} weights")
    for row in channel_rows:
        if "error" in row:
            print(f"{row['id']:<24} unavailable: {row['error']}")
            continue
        spacing = "x".join(f"{s:g}" for s in row["spacing"])
        default = " (default)" if row["default"] else ""
        print(f"{row['id']:<24} {row['kind']:<12} {row['channel']:<6} {','.join(row['inputs']) + ' (any)':<28} {spacing:<14} {row['weights']}{default}")
    print("\nFamilies (medsynth finetune --model FAMILY trains a new model of one):")
    print(f"{'family':<12} {'kind':<14} {'dims':<5} {'can':<26} {'own training options':<36} summary")
    for family in registry.families():
        caps = family.capabilities
        can = ", ".join(word for word, on in (("mask", caps.mask), ("inpaint", caps.inpaint), (f"adds {caps.channel}", caps.channel)) if on)
        options = (", ".join(spec.flag for spec in family.options()) or "(none)") if family.trainer else "(does not train)"
        print(f"{family.name:<12} {family.kind:<14} {caps.dims}D   {can or '-':<26} {options:<36} {family.summary}")
    return 0


def _print_validity(rows: list[dict]) -> None:
    """Each generator's validity row from its card (bench/bench_validity.py on the phantom benchmark)."""
    rated = [row for row in rows if row.get("validity")]
    if not rated:
        return
    print("\nValidity on the phantom benchmark (bench/results/validity.md; U-Net TSTR, 95 % intervals):")
    print(f"{'id':<24} {'dice_ratio':<22} {'control ratio':<22} {'precision/recall':<18} {'MS-SSIM syn/real':<18} memorised")
    for row in rated:
        v = row["validity"]
        ratio = f"{v['dice_ratio']} {v['dice_ratio_ci']}"
        control = f"{v['control_ratio']} {v['control_ratio_ci']}"
        pr = f"{v['precision']}/{v['recall']}"
        ms = f"{v['ms_ssim_synthetic']}/{v['ms_ssim_real']}"
        print(f"{row['id']:<24} {ratio:<22} {control:<22} {pr:<18} {ms:<18} {v['memorised_fraction']}")
