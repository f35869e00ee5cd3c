"""lora_core.benchmark: one timed training step, full fine-tuning against LoRA; its byte counts read from the tensors."""
from __future__ import annotations

import math

import pytest
import torch

from lora_core.benchmark import benchmark_step


def test_benchmark_measures_states_from_tensors():
    calls = []
    res = benchmark_step(64, 32, 4, n=8, repeats=3, progress=lambda i, total: calls.append((i, total)))
    assert calls == [(i, 6) for i in range(1, 7)]
    full, lora = res.full, res.lora
    assert full.trainable_params == 64 * 32 and lora.trainable_params == 4 * (64 + 32)
    # float32: grad + exp_avg + exp_avg_sq, 4 bytes each
    assert full.state_bytes == 3 * 4 * 64 * 32 and full.param_bytes == 4 * 64 * 32
    assert lora.state_bytes == 3 * 4 * 4 * (64 + 32)
    assert len(full.step_seconds) == 3 and full.seconds > 0 and lora.seconds > 0
    assert full.peak_bytes is None and res.speedup == full.seconds / lora.seconds


def test_benchmark_single_mode_and_validation():
    res = benchmark_step(16, 16, 2, n=4, repeats=1, mode="lora")
    assert res.full is None and res.lora.mode == "lora" and res.speedup is None
    with pytest.raises(ValueError, match="mode"):
        benchmark_step(16, 16, 2, repeats=1, mode="fast")
    with pytest.raises(ValueError, match="exceeds"):
        benchmark_step(16, 8, 9, repeats=1)
    with pytest.raises(ValueError, match="repeats"):
        benchmark_step(16, 16, 2, repeats=0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_benchmark_cuda_peak_memory():
    res = benchmark_step(512, 512, 8, n=16, repeats=2, device="cuda")
    assert res.full.peak_bytes >= res.full.param_bytes + res.full.state_bytes
    assert res.lora.peak_bytes < res.full.peak_bytes


def test_default_benchmark_is_quick():
    res = benchmark_step(repeats=2)
    assert res.full.trainable_params == 1024 * 1024 and res.lora.trainable_params == 8 * 2048
    assert math.isfinite(res.full.seconds)
