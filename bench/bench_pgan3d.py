"""pgan3d speed and memory: eager fp32 against bf16 autocast + channels_last_3d, in the same run.

Measures generator volumes per second at 64^3 and 128^3 (batch 1, default widths) and one training step
(critic + generator update, WGAN-GP, DiffAugment, batch 2) at 64^3 with its peak resident memory. Every
measurement runs in a fresh subprocess so peak memory belongs to that configuration alone.

    .venv/bin/python bench/bench_pgan3d.py [--threads N] [--repeats R]
    .venv/bin/python bench/bench_pgan3d.py --augment-study [--steps N]

``--augment-study`` trains twice on 8 phantom cases at 16^3 (DiffAugment on, then off; same seed) and
reports how far the critic separates its 8 training cases from 8 held-out cases of the same distribution
(critic-score gap in units of the scores' standard deviation: a memorising critic has a large gap) and the
samples' MS-SSIM diversity against the training cases'.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from contextlib import nullcontext
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "engine"))
sys.path.insert(0, str(ROOT))

CASES = [("generate", 64), ("generate", 128), ("train", 64)]
MODES = ("fp32", "fp32+cl", "bf16+cl")


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(kind: str, res: int, mode: str, repeats: int, threads: int) -> dict:
    import torch
    from medsynth_engine.data.training_set import TrainingSet
    from medsynth_engine.models.pgan3d.network import Generator, PGANConfig
    from medsynth_engine.models.pgan3d.trainer import GANTrainer, TrainSettings

    torch.set_num_threads(threads)
    channels_last = mode != "fp32"
    amp = mode.startswith("bf16")
    config = PGANConfig(resolution=res)
    base = _peak_mb()
    if kind == "generate":
        g = Generator(config).eval()
        if channels_last:
            g.to(memory_format=torch.channels_last_3d)
        z = torch.randn(1, config.latent_dim)
        context = torch.autocast("cpu", dtype=torch.bfloat16) if amp else nullcontext()
        with torch.no_grad(), context:
            g(z)
            start = time.perf_counter()
            for _ in range(repeats):
                g(z).float()
            seconds = (time.perf_counter() - start) / repeats
        return {"seconds": seconds, "volumes_per_s": 1 / seconds, "peak_mb": _peak_mb() - base}
    n = 4
    images = torch.rand(n, 4, res, res, res) * 2 - 1
    labels = torch.randint(0, 3, (n, res, res, res), dtype=torch.uint8)
    data = TrainingSet("bench", ("t1", "t1ce", "t2", "flair", "seg"), [str(i) for i in range(n)], images, labels, {})
    settings = TrainSettings(batch_size=2, amp=amp, channels_last=channels_last)
    trainer = GANTrainer(config, data, settings, torch.device("cpu"), 0)
    trainer.step(config.stages - 1, 1.0)
    start = time.perf_counter()
    for _ in range(repeats):
        losses = trainer.step(config.stages - 1, 1.0)
    seconds = (time.perf_counter() - start) / repeats
    finite = all(v == v and abs(v) != float("inf") for v in losses.values())
    return {"seconds": seconds, "peak_mb": _peak_mb() - base, "finite_losses": finite}


def augment_study(steps: int, threads: int) -> None:
    import tempfile

    import torch
    from medsynth_engine.data import PreprocessSpec, load_training_set
    from medsynth_engine.generate import GenerateRequest, generate_set
    from medsynth_engine.models.pgan3d.network import PGANConfig
    from medsynth_engine.models.pgan3d.schedule import Schedule
    from medsynth_engine.models.pgan3d.trainer import GANTrainer, TrainSettings
    from medsynth_engine.registry import default_registry
    from medsynth_engine.training.diversity import pairwise_ms_ssim

    torch.set_num_threads(threads)
    spec = PreprocessSpec(shape=(16, 16, 16), spacing=(12.0, 12.0, 12.0))
    with tempfile.TemporaryDirectory() as tmp:
        sets = []
        for name, seed in (("train", 11), ("held", 12)):
            request = GenerateRequest(model="phantom", n=8, seed=seed, out=Path(tmp) / name, shape=(24, 24, 24), spacing=(8.0,) * 3, device="cpu")
            sets.append(load_training_set(generate_set(request, default_registry()), spec))
    train, held = sets
    config = PGANConfig(resolution=16, base_width=32, max_width=32)
    schedule = Schedule(steps, config.stages)
    print(f"DiffAugment study: 8 training cases, 8 held-out, 16^3, width 32, batch 4, {steps} steps, {threads} thread(s)")
    print("| DiffAugment | critic gap train vs held-out (SD units) | samples MS-SSIM | training cases MS-SSIM | s |")
    print("|---|---|---|---|---|")
    for augment in (True, False):
        start = time.perf_counter()
        trainer = GANTrainer(config, train, TrainSettings(batch_size=4, augment=augment), torch.device("cpu"), 0)
        for step in range(steps):
            trainer.step(*schedule.at(step))
        with torch.no_grad():
            scores_train = trainer.D(train.batch(torch.arange(8))).float()
            scores_held = trainer.D(held.batch(torch.arange(8))).float()
        spread = torch.cat([scores_train, scores_held]).std().item()
        gap = (scores_train.mean() - scores_held.mean()).item() / max(spread, 1e-8)
        fake = pairwise_ms_ssim(trainer.sample(8, 1)[:, :4])
        real = pairwise_ms_ssim(train.images)
        print(f"| {'on' if augment else 'off'} | {gap:+.2f} | {fake:.3f} | {real:.3f} | {time.perf_counter() - start:.0f} |")
        sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", nargs=3, metavar=("KIND", "RES", "MODE"))
    parser.add_argument("--augment-study", action="store_true")
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()
    if args.augment_study:
        augment_study(args.steps, args.threads)
        return
    if args.child:
        kind, res, mode = args.child
        print(json.dumps(child(kind, int(res), mode, args.repeats, args.threads)))
        return
    import torch

    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU, default widths (128 at 4^3, halving per stage, floor 16)")
    print("| measurement | fp32 eager | fp32 + channels_last_3d | bf16 autocast + channels_last_3d | speed-up cl / bf16+cl |")
    print("|---|---|---|---|---|")
    for kind, res in CASES:
        results = {}
        for mode in MODES:
            cmd = [sys.executable, __file__, "--child", kind, str(res), mode, "--repeats", str(args.repeats), "--threads", str(args.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
            results[mode] = json.loads(out)
        a, c, b = results["fp32"], results["fp32+cl"], results["bf16+cl"]
        if kind == "generate":
            cells = [f"{r['volumes_per_s']:.2f} ({r['peak_mb']:.0f} MB)" for r in (a, c, b)]
            print(f"| generator {res}^3, volumes/s (peak) | " + " | ".join(cells) + f" | {a['seconds'] / c['seconds']:.2f}x / {a['seconds'] / b['seconds']:.2f}x |")
        else:
            cells = [f"{r['seconds']:.2f} s ({r['peak_mb']:.0f} MB)" for r in (a, c, b)]
            print(f"| training step {res}^3 batch 2 (peak) | " + " | ".join(cells) + f" | {a['seconds'] / c['seconds']:.2f}x / {a['seconds'] / b['seconds']:.2f}x |")
            print(f"finite losses: fp32 {a['finite_losses']}, fp32+cl {c['finite_losses']}, bf16+cl {b['finite_losses']}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
