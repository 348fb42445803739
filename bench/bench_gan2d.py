"""dcgan2d and stylegan2d speed at 128x128: fp32 against channels_last and bf16 autocast + channels_last, in one run.

Measures generation throughput (slices per second: the generator on a batch of latents, stylegan2d through the
mapping network and the EMA generator's fixed noise, as ``medsynth generate`` runs it) and the time of one
training step (dcgan2d: its critic updates and one generator update, WGAN-GP; stylegan2d: one D and one G update
with R1 and path length as on their lazy schedule's first step, and ADA at p = 0.2) on random slices. All
measurements run in one process, each on freshly built networks (no memory is measured, so nothing needs a
process of its own, and a loaded CPU pays for the imports once); each row prints its ratio against fp32
measured in the same command.

    .venv/bin/python bench/bench_gan2d.py [--threads 1] [--repeats 2] [--widths 64,128] [--batch 8]

Widths are the shipped recipes' scale (dcgan2d width 64, stylegan2d width 128 at 128x128), not the papers'
(1024 and 512), so a CPU finishes the whole table in a few minutes; ``--widths`` changes them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "engine"))
sys.path.insert(0, str(ROOT))

RESOLUTION = 128
CHANNELS = ["t1", "t1ce", "t2", "flair"]
MODES = ("fp32", "fp32+cl", "bf16+cl")
CASES = [("dcgan2d", "generate"), ("stylegan2d", "generate"), ("dcgan2d", "train"), ("stylegan2d", "train")]


def _slices(n: int):
    import torch
    from medsynth_engine.models.slices2d.slices import SliceSet

    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, len(CHANNELS), RESOLUTION, RESOLUTION, generator=g) * 2 - 1
    labels = torch.tensor([0, 1, 2, 4], dtype=torch.uint8)[torch.randint(0, 4, (n, RESOLUTION, RESOLUTION), generator=g)]
    return SliceSet("bench", (*CHANNELS, "seg"), 1, images, labels, {})


def _trainer(family: str, width: int, batch: int, amp: bool):
    import torch

    device = torch.device("cpu")
    if family == "dcgan2d":
        from medsynth_engine.models.dcgan2d.network import DCGANConfig
        from medsynth_engine.models.dcgan2d.trainer import DCGANTrainer, TrainSettings

        config = DCGANConfig(resolution=RESOLUTION, image_channels=CHANNELS, labels=True, width=width)
        return DCGANTrainer(config, _slices(4 * batch), TrainSettings(batch_size=batch, critic_steps=1, amp=amp), device, 0)
    from medsynth_engine.models.stylegan2d.network import StyleGANConfig
    from medsynth_engine.models.stylegan2d.trainer import StyleGANTrainer, TrainSettings

    config = StyleGANConfig(resolution=RESOLUTION, image_channels=CHANNELS, labels=True, width=width)
    trainer = StyleGANTrainer(config, _slices(4 * batch), TrainSettings(batch_size=batch, amp=amp), device, 0)
    trainer.ada.p.fill_(0.2)
    return trainer


def measure(family: str, kind: str, mode: str, width: int, batch: int, repeats: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    amp, channels_last = mode.startswith("bf16"), mode != "fp32"
    trainer = _trainer(family, width, batch, amp)
    if channels_last:
        for module in trainer.modules().values():
            module.to(memory_format=torch.channels_last)
    if kind == "generate":
        g = trainer.G_ema if family == "stylegan2d" else trainer.G.eval()
        z = torch.randn(batch, g.config.w_dim if family == "stylegan2d" else g.config.latent_dim)
        run = (lambda: g(z, noise_mode="const")) if family == "stylegan2d" else (lambda: g(z))
        context = torch.autocast("cpu", dtype=torch.bfloat16) if amp else nullcontext()
        with torch.no_grad(), context:
            run().float()
            start = time.perf_counter()
            for _ in range(repeats):
                out = run().float()
            seconds = (time.perf_counter() - start) / repeats
        return {"slices_per_s": batch / seconds, "finite": bool(torch.isfinite(out).all())}
    trainer.step()  # warm-up: the first step also runs R1 and path length (stylegan2d); later ones as scheduled
    trainer.steps_done = 0
    start = time.perf_counter()
    for _ in range(repeats):
        losses = trainer.step()
        trainer.steps_done = 0  # every measured step is a first step: the same regularised work each time
    seconds = (time.perf_counter() - start) / repeats
    return {"seconds": seconds, "finite": all(v == v and abs(v) != float("inf") for v in losses.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--widths", default="64,128", help="dcgan2d,stylegan2d width")
    args = parser.parse_args()
    import torch

    widths = dict(zip(("dcgan2d", "stylegan2d"), (int(w) for w in args.widths.split(",")), strict=True))
    started = time.perf_counter()
    print(f"torch {torch.__version__}, CPU, {args.threads} thread(s), {RESOLUTION}x{RESOLUTION}, batch {args.batch}, "
          f"{args.repeats} repeats after 1 warm-up; widths {widths}; load average {os.getloadavg()[0]:.1f} at start")
    print("| measurement | fp32 | fp32 + channels_last | bf16 autocast + channels_last | ratio cl / bf16+cl (x fp32) | finite |")
    print("|---|---|---|---|---|---|")
    for family, kind in CASES:
        results = {mode: measure(family, kind, mode, widths[family], args.batch, args.repeats, args.threads) for mode in MODES}
        if kind == "generate":
            cells = [f"{results[m]['slices_per_s']:.1f}" for m in MODES]
            ratios = [results[m]["slices_per_s"] / results["fp32"]["slices_per_s"] for m in MODES[1:]]
            label = f"{family} generation, slices/s"
        else:
            cells = [f"{results[m]['seconds']:.2f} s" for m in MODES]
            ratios = [results["fp32"]["seconds"] / results[m]["seconds"] for m in MODES[1:]]
            label = f"{family} training step (batch {args.batch})"
        finite = all(r["finite"] for r in results.values())
        print(f"| {label} | {' | '.join(cells)} | {ratios[0]:.2f}x / {ratios[1]:.2f}x | {'yes' if finite else 'NO'} |", flush=True)
    print(f"(ratios > 1: faster than fp32; {time.perf_counter() - started:.0f} s in all, load average {os.getloadavg()[0]:.1f} at the end)")


if __name__ == "__main__":
    main()
