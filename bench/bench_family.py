"""The LoRA family's cost against LoRA: one forward pass and one training step of each variant, at three sizes.

    python bench/bench_family.py [--repeats 30] [--device cpu|cuda]

Each variant runs through lora_core.family exactly as the Family page trains it (autograd for the gradients, the
core's AdamW for the step) in float64 on the CPU, float32 on a GPU. Sizes: the seed's (n 3, d 5, k 3, r 2),
256² (n 64, r 8) and 1024² (n 256, r 16). Printed: the median of ``repeats`` timings after warm-up, and each
variant's time over LoRA's. The number people ask about is DoRA's overhead: it forms W + s·A·B and its column
norms on every pass. A benchmark, not a timed test: it prints a table (docs/PERFORMANCE.md has the results).

It also fits lora_app.compute.family's step model (MACS_PER_S, STEP_OVERHEAD_S) to the step times.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch

from lora_app.compute.family import step_macs
from lora_core.family import VARIANTS, FamilySettings, forward, start, train
from lora_core.training import make_target

SIZES = {"seed 3×5×3, r 2": (3, 5, 3, 2), "256², n 64, r 8": (64, 256, 256, 8), "1024², n 256, r 16": (256, 1024, 1024, 16)}


def median_seconds(fn, repeats: int, device: torch.device) -> float:
    for _ in range(10):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    dtype = torch.float64 if device.type == "cpu" else torch.float32
    print(f"device {device}, {dtype}, torch threads {torch.get_num_threads()}, median of {args.repeats}")
    fit = []
    for label, (n, d, k, r) in SIZES.items():
        g = torch.Generator().manual_seed(0)
        X = torch.randn(n, d, generator=g, dtype=torch.float64).to(device, dtype)
        W = (torch.randn(d, k, generator=g, dtype=torch.float64) / d ** 0.5).to(device, dtype)
        T = make_target(X, W, r_star=1, seed=0).T
        s = FamilySettings(r=r, alpha=2.0 * r, lr=1e-3, steps=1)
        print(f"\n{label}")
        print(f"{'variant':10s} {'forward ms':>11s} {'× LoRA':>7s} {'step ms':>9s} {'× LoRA':>7s}")
        base = {}
        for variant in VARIANTS:  # every variant once first: the first timed one must not pay torch's warm-up
            params, frozen = start(variant, W, s)
            train(variant, X, T, params, frozen, s, steps=3)
        for variant in VARIANTS:
            params, frozen = start(variant, W, s)
            fwd = median_seconds(lambda: forward(variant, X, params, frozen, s), args.repeats, device)
            # ten steps (eleven loss evaluations) a timing, as the page's runs go: the time of one step
            step = median_seconds(lambda: train(variant, X, T, params, frozen, s, steps=10), args.repeats, device) / 10
            base.setdefault("f", fwd)
            base.setdefault("s", step)
            print(f"{variant:10s} {1e3 * fwd:11.3f} {fwd / base['f']:7.2f} {1e3 * step:9.3f} {step / base['s']:7.2f}")
            fit.append((step_macs(variant, n, d, k, r), step))
    # least squares: step = macs / rate + overhead
    xs, ys = [m for m, _ in fit], [t for _, t in fit]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    print(f"\nstep ≈ macs / {1 / slope:.3g} per s + {1e3 * (my - slope * mx):.3g} ms "
          "(lora_app.compute.family's MACS_PER_S and STEP_OVERHEAD_S)")


if __name__ == "__main__":
    main()
