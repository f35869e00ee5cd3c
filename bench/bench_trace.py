"""Time adamw_trace against a plain autograd + torch.optim.AdamW loop: python bench/bench_trace.py"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lora_core import adamw_trace, make_target
from lora_core.lora import seed_example

STEPS = 500
REPEATS = 7
HP = dict(lr=0.01, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)


def plain_loop(X, W, A, B, T, steps, scaling=1.0):
    # what one would write without the explainer: no intermediates kept, only the loss curve
    A_p, B_p = A.clone().requires_grad_(), B.clone().requires_grad_()
    opt = torch.optim.AdamW([A_p, B_p], foreach=False, **HP)
    losses = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(X @ W + ((X @ A_p) @ B_p) * scaling, T)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return torch.stack(losses).tolist()


def timings(*fns, repeats=REPEATS):
    """Wall times of each fn; runs are interleaved so load from other processes hits both alike."""
    times = [[] for _ in fns]
    for fn in fns:
        fn()  # warm-up
    for _ in range(repeats):
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
    return times


def example(n, d, k, r, dtype=torch.float64):
    if (n, d, k, r) == (3, 5, 3, 2):
        X, W, A, B = seed_example(dtype=dtype)
    else:
        g = torch.Generator().manual_seed(0)
        X, W, A, B = (torch.randn(*s, generator=g, dtype=dtype) * 0.1 for s in ((n, d), (d, k), (d, r), (r, k)))
    return X, W, A, B, make_target(X, W, r_star=min(2, r)).T


def main():
    sizes = [(3, 5, 3, 2), (16, 64, 64, 4), (64, 256, 256, 8)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {STEPS} steps, "
          f"median of {REPEATS}, float64, CPU")
    print(f"{'n×d×k, r':>18} | {'adamw_trace':>11} | {'plain loop':>10} | {'ratio':>5} | {'ratio of mins':>13}")
    print("-" * 73)
    for n, d, k, r in sizes:
        X, W, A, B, T = example(n, d, k, r)
        t_trace, t_plain = timings(lambda: adamw_trace(X, W, A, B, T, steps=STEPS, **HP),
                                   lambda: plain_loop(X, W, A, B, T, STEPS))
        med_trace, med_plain = statistics.median(t_trace), statistics.median(t_plain)
        print(f"{f'{n}×{d}×{k}, r={r}':>18} | {med_trace * 1e3:>8.1f} ms | {med_plain * 1e3:>7.1f} ms | "
              f"{med_trace / med_plain:>5.2f} | {min(t_trace) / min(t_plain):>13.2f}")

if __name__ == "__main__":
    main()
