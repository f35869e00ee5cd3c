"""A live step benchmark: one training step of a d×k linear layer, full fine-tuning against LoRA, timed on a device.

The counts and memory of whole models are computed, never measured, in :mod:`lora_core.scale`.
"""
from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import NamedTuple

import torch

from .checks import positive_int

BENCH_MODES = ("full", "lora", "both")


class StepStats(NamedTuple):
    mode: str                      # "full" or "lora"
    seconds: float                 # median wall time of one step
    step_seconds: tuple[float, ...]
    trainable_params: int
    param_bytes: int               # trainable parameters themselves
    state_bytes: int               # their .grad + AdamW exp_avg + exp_avg_sq, from the tensors' nbytes
    peak_bytes: int | None         # torch.cuda.max_memory_allocated on CUDA, else None


class BenchmarkResult(NamedTuple):
    full: StepStats | None
    lora: StepStats | None

    @property
    def speedup(self) -> float | None:
        if self.full is None or self.lora is None:
            return None
        return self.full.seconds / self.lora.seconds


def _sync(device: torch.device) -> None:
    # CUDA kernels run asynchronously; without this the timer would stop too early
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _trainable_state_bytes(params: list[torch.Tensor], opt: torch.optim.Optimizer) -> tuple[int, int]:
    param_bytes = sum(p.nbytes for p in params)
    state = sum(p.grad.nbytes for p in params if p.grad is not None)
    for p in params:
        s = opt.state.get(p, {})
        state += sum(s[key].nbytes for key in ("exp_avg", "exp_avg_sq") if key in s)
    return param_bytes, state


def _run_mode(mode: str, d: int, k: int, r: int, n: int, repeats: int, device: torch.device,
              dtype: torch.dtype, tick: Callable[[], None]) -> StepStats:
    g = torch.Generator(device="cpu").manual_seed(0)
    mk = lambda *shape: torch.randn(*shape, generator=g, dtype=dtype).to(device)
    X, T = mk(n, d), mk(n, k)
    W = (mk(d, k) / math.sqrt(d)).requires_grad_(mode == "full")
    if mode == "full":
        params = [W]
        forward = lambda: X @ W
    else:
        A = (mk(d, r) / math.sqrt(d)).requires_grad_(True)
        B = torch.zeros(r, k, dtype=dtype, device=device, requires_grad=True)
        params = [A, B]
        forward = lambda: X @ W + (X @ A) @ B  # PEFT's order: never forms A·B
    opt = torch.optim.AdamW(params, lr=1e-3)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step() -> None:
        opt.zero_grad(set_to_none=False)
        torch.nn.functional.mse_loss(forward(), T).backward()
        opt.step()

    step()  # warm-up: AdamW allocates its states lazily, and the first kernels pay setup costs
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
        tick()
    param_bytes, state_bytes = _trainable_state_bytes(params, opt)
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return StepStats(mode, statistics.median(times), tuple(times), sum(p.numel() for p in params),
                     param_bytes, state_bytes, peak)


def benchmark_step(d: int = 1024, k: int = 1024, r: int = 8, *, n: int = 64, repeats: int = 10,
                   device: torch.device | str = "cpu", mode: str = "both",
                   dtype: torch.dtype = torch.float32,
                   progress: Callable[[int, int], None] | None = None) -> BenchmarkResult:
    """Time one training step (forward, MSE backward, AdamW step) of a d×k linear layer on n rows.

    ``mode`` is "full" (train W), "lora" (freeze W, train A d×r and B r×k) or "both". Each mode runs
    one untimed warm-up step, then ``repeats`` timed steps; ``seconds`` is their median.
    ``progress(i, total)`` is called after each timed step, i counting from 1 across both modes.
    """
    d, k, r, n, repeats = (positive_int(nm, v) for nm, v in
                           (("d", d), ("k", k), ("rank r", r), ("n", n), ("repeats", repeats)))
    if r > min(d, k):
        raise ValueError(f"rank r = {r} exceeds min(d, k) = {min(d, k)}")
    if mode not in BENCH_MODES:
        raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(BENCH_MODES)}")
    device = torch.device(device)
    modes = ("full", "lora") if mode == "both" else (mode,)
    total, done = repeats * len(modes), 0

    def tick() -> None:
        nonlocal done
        done += 1
        if progress is not None:
            progress(done, total)

    stats = {m: _run_mode(m, d, k, r, n, repeats, device, dtype, tick) for m in modes}
    return BenchmarkResult(stats.get("full"), stats.get("lora"))
