"""add-channel speed and memory per 128^3 case: eager fp32 against the optimised path, in one run.

One phantom case (128^3 at 1.5 mm, the four sequences) gets a seg and a ct channel from the shipped
models (seg-phantom, mr2ct-phantom; both at 2 mm, sliding window of 64^3). Modes:

- ``eager``: float32, one sliding window per network call, the reference;
- ``fp32``: float32, the windows batched 8 per call (``amp=False``);
- ``fast``: what ``amp=None`` picks on this device (CPU: float32 with batched windows; GPU: + bf16, channels_last_3d);
- ``bf16``: bf16 autocast + channels_last_3d, batched windows (``amp=True``);
- ``fast+N4``: ``fast`` with N4 bias correction of the four sequences first (add-channel's default for seg; the other
  modes run without it, so their ratios are the network path's).
All run under ``torch.inference_mode``.

Each measurement runs in a fresh subprocess (so peak resident memory is that mode's alone): one warm-up
add-channel, then the best of ``--repeats`` timed runs, end to end (read, resample, network, resample back,
write). Prints a Markdown table with ratios against fp32.

    .venv/bin/python bench/bench_add_channel.py [--threads N] [--repeats R] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "engine"))
sys.path.insert(0, str(ROOT))

#: mode -> (amp, windows per network call, N4 first)
MODES = {"eager": (False, 1, False), "fp32": (False, 8, False), "fast": (None, 8, False), "bf16": (True, 8, False), "fast+N4": (None, 8, True)}


def make_case(folder: Path) -> Path:
    from medsynth_engine.generate import GenerateRequest, generate_set
    from medsynth_engine.registry import default_registry

    request = GenerateRequest(
        model="phantom", n=1, seed=4242, out=folder / "set", channels="t1,t1ce,t2,flair", shape=(128, 128, 128), spacing=(1.5,) * 3, device="cpu"
    )
    out = generate_set(request, default_registry())
    return next(p for p in out.iterdir() if p.is_dir())


def child(case: Path, channel: str, mode: str, repeats: int, threads: int, device: str) -> dict:
    import torch
    from medsynth_engine.addchannel import AddChannelRequest, add_channel
    from medsynth_engine.models.channelnet import model

    torch.set_num_threads(threads)
    amp, model.SW_BATCH, n4 = MODES[mode]
    times, network, n4_seconds = [], [], []
    with tempfile.TemporaryDirectory() as out:
        for i in range(repeats + 1):
            started = time.perf_counter()
            result = add_channel(AddChannelRequest(case=case, channel=channel, out=Path(out), replace=True, device=device, amp=amp, n4=n4))
            if i:
                times.append(time.perf_counter() - started)
                network.append(result["network_seconds"])
                n4_seconds.append(result["n4_seconds"])
    if device.startswith("cuda"):
        peak = torch.cuda.max_memory_allocated() / 2**20
    else:  # VmHWM: this process's own high-water mark (ru_maxrss would carry the parent's over fork and exec)
        status = Path("/proc/self/status").read_text()
        peak = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024
    return {"channel": channel, "mode": mode, "seconds": min(times), "network_seconds": min(network), "n4_seconds": min(n4_seconds), "peak_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--child", nargs=3, metavar=("CASE", "CHANNEL", "MODE"))
    args = parser.parse_args()
    if args.child:
        case, channel, mode = args.child
        print(json.dumps(child(Path(case), channel, mode, args.repeats, args.threads, args.device)))
        return
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        case = make_case(Path(tmp))
        rows = []
        for channel in ("seg", "ct"):
            for mode in MODES:
                cmd = [sys.executable, __file__, "--child", str(case), channel, mode, "--threads", str(args.threads)]
                cmd += ["--repeats", str(args.repeats), "--device", args.device]
                result = subprocess.run(cmd, capture_output=True, text=True, check=True)
                rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
                print(rows[-1], file=sys.stderr)
    memory = "peak CUDA MB" if args.device.startswith("cuda") else "peak RSS MB"
    print(f"torch {torch.__version__}, {args.threads} thread(s), device {args.device}, 128^3 case at 1.5 mm, best of {args.repeats}\n")
    print(f"| channel | mode | seconds per case | speed vs eager | network seconds | network speed vs eager | N4 seconds | {memory} |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        ref = next(r for r in rows if r["channel"] == row["channel"] and r["mode"] == "eager")
        print(
            f"| {row['channel']} | {row['mode']} | {row['seconds']:.2f} | {ref['seconds'] / row['seconds']:.2f}x "
            f"| {row['network_seconds']:.2f} | {ref['network_seconds'] / row['network_seconds']:.2f}x | {row['n4_seconds']:.2f} | {row['peak_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
