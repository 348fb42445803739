"""ldm3d sampling speed and memory: seconds per volume at 64^3 and 128^3 by DDIM steps, fp32 against bf16.

Uses the shipped ldm3d-phantom architecture (autoencoder widths, UNet widths, 4 latent channels, latents 1/4
of the side) at each grid size with its weights where they fit (the shipped grid) and random weights
elsewhere: timing does not depend on the weights' values. One volume per call (batch 1), the full sampler
(``sample_volumes``: DDIM loop through MONAI's LatentDiffusionInferer, then the decoder). Every measurement
runs in a fresh subprocess so its peak resident memory is its own. Ratios are bf16 / fp32 in the same run.

    .venv/bin/python bench/bench_ldm3d.py [--threads N] [--steps 5,10,25,50] [--sizes 64,128]
    .venv/bin/python bench/bench_ldm3d.py --steps-study [--seeds 4]

``--steps-study`` picks the default number of sampling steps by quality per second: with the shipped
weights, 4 seeds (conditioned on nothing, then on one training-like mask) are sampled at 2-50 DDIM steps and
compared with the same seeds at 100 steps (DDIM with eta 0 converges to one sample per seed as steps grow):
mean absolute difference of the image channels in [-1, 1] units, and seconds per volume.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "engine"))
sys.path.insert(0, str(ROOT))


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(size: int, steps: int, mode: str, threads: int) -> dict:
    import torch
    from medsynth_engine.modelfile import read_card
    from medsynth_engine.models.ldm3d.network import LDMConfig, build_autoencoder, build_unet, unconditional
    from medsynth_engine.models.ldm3d.plugin import sample_volumes, shipped_folder

    torch.set_num_threads(threads)
    card = read_card(shipped_folder())
    config = LDMConfig.from_dict({**card.architecture, "resolution": size})
    torch.manual_seed(0)
    autoencoder, unet = build_autoencoder(config).eval(), build_unet(config).eval()
    condition = unconditional(1, config.latent_resolution)
    device = torch.device("cpu")
    amp = mode == "bf16"
    base = _peak_mb()
    sample_volumes(config, autoencoder, unet, condition, 0, 1, device, amp=amp)  # warm-up
    start = time.perf_counter()
    sample_volumes(config, autoencoder, unet, condition, 1, steps, device, amp=amp)
    seconds = time.perf_counter() - start
    return {"size": size, "steps": steps, "mode": mode, "seconds": seconds, "peak_mb": _peak_mb(), "peak_over_start_mb": _peak_mb() - base}


def steps_study(seeds: int, threads: int) -> None:
    import numpy as np
    import torch
    from medsynth_engine.models.ldm3d.network import condition_from_codes, unconditional
    from medsynth_engine.models.ldm3d.plugin import LDM3DModel, sample_volumes, shipped_folder

    torch.set_num_threads(threads)
    model = LDM3DModel(shipped_folder())
    config, device = model.config, torch.device("cpu")
    codes = torch.zeros((1, *(config.resolution,) * 3), dtype=torch.uint8)
    c = config.resolution // 2
    codes[0, c + 2 : c + 12, c - 5 : c + 5, c - 5 : c + 5] = 2
    codes[0, c + 4 : c + 10, c - 3 : c + 3, c - 3 : c + 3] = 4
    conditions = [unconditional(1, config.latent_resolution), condition_from_codes(codes, config.latent_resolution)]
    k = len(config.image_channels)

    def run(steps: int, seed: int, cond: torch.Tensor) -> tuple[np.ndarray, float]:
        start = time.perf_counter()
        out = sample_volumes(config, model.autoencoder, model.unet, cond, seed, steps, device)
        return out[0, :k].numpy(), time.perf_counter() - start

    reference = {(s, i): run(100, s, cond)[0] for s in range(seeds) for i, cond in enumerate(conditions)}
    print(f"model {model.id}, {config.resolution}^3, {threads} thread(s); reference: 100 DDIM steps")
    print("| steps | s/volume | mean abs diff to 100 steps ([-1, 1] units) |")
    print("|---|---|---|")
    for steps in (2, 5, 10, 15, 25, 50):
        diffs, times = [], []
        for s in range(seeds):
            for i, cond in enumerate(conditions):
                sample, seconds = run(steps, s, cond)
                diffs.append(float(np.abs(sample - reference[(s, i)]).mean()))
                times.append(seconds)
        print(f"| {steps} | {np.mean(times):.2f} | {np.mean(diffs):.4f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", default="5,10,25,50")
    parser.add_argument("--sizes", default="64,128")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--steps-study", action="store_true")
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    if args.steps_study:
        steps_study(args.seeds, args.threads)
        return
    if args.child:
        size, steps, mode = args.child.split(":")
        print(json.dumps(child(int(size), int(steps), mode, args.threads)))
        return
    import torch

    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} thread(s), torch {torch.__version__}, CUDA: {torch.cuda.is_available()}")
    print("| grid | steps | fp32 s/volume | bf16 s/volume | bf16/fp32 time | fp32 peak MB | bf16 peak MB |")
    print("|---|---|---|---|---|---|---|")
    for size in map(int, args.sizes.split(",")):
        for steps in map(int, args.steps.split(",")):
            rows = {}
            for mode in ("fp32", "bf16"):
                run = subprocess.run(
                    [sys.executable, __file__, "--child", f"{size}:{steps}:{mode}", "--threads", str(args.threads)],
                    capture_output=True, text=True, check=True,
                )
                rows[mode] = json.loads(run.stdout.strip().splitlines()[-1])
            f, b = rows["fp32"], rows["bf16"]
            print(
                f"| {size}^3 | {steps} | {f['seconds']:.2f} | {b['seconds']:.2f} | {b['seconds'] / f['seconds']:.2f} | "
                f"{f['peak_mb']:.0f} | {b['peak_mb']:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
