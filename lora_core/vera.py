"""VeRA (Kopiczko et al. 2024): one pair of random A and B, frozen and shared by every layer; two vectors train.

In the seed's notation the update is ΔW = A·diag(d)·B·diag(b): A (d×r) and B (r×k) are drawn once from a
seeded generator and never trained, d (r numbers) scales each of the r directions and b (k numbers) each
output column. A layer trains r + k numbers where LoRA trains r·(d + k), so VeRA can afford a far larger r.
PEFT's ``VeraConfig`` starts d at ``d_initial`` (0.1) and b at zero, so ΔW = 0 at step 0, and makes A and B
with its ``_kaiming_init`` from ``projection_prng_key``: that is reproduced here, so the same key gives PEFT's
matrices (sized for the largest layer, each layer takes the top-left block it needs).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .checks import positive_int
from .lora import check_lora_shapes

D_INITIAL = 0.1        # PEFT's VeraConfig.d_initial
PRNG_KEY = 0           # PEFT's VeraConfig.projection_prng_key


class VeraForward(NamedTuple):
    base: torch.Tensor   # n×k: X·W
    delta: torch.Tensor  # n×k: ((X·A)·diag(d)·B)·diag(b)
    q: torch.Tensor      # base + delta


def vera_projections(d: int, k: int, r: int, key: int = PRNG_KEY) -> tuple[torch.Tensor, torch.Tensor]:
    """The frozen A (d×r) and B (r×k) PEFT makes for in_features d and out_features k (float32).

    PEFT draws its vera_A (r×d) and then vera_B (k×r) uniformly in ±√6/√fan_in from one generator seeded
    with the key; A and B here are their transposes.
    """
    for name, v in (("d", d), ("k", k), ("rank r", r)):
        positive_int(name, v)
    generator = torch.Generator(device="cpu").manual_seed(key)
    vera_A = torch.empty(r, d).uniform_(-math.sqrt(6 / d), math.sqrt(6 / d), generator=generator)
    vera_B = torch.empty(k, r).uniform_(-math.sqrt(6 / r), math.sqrt(6 / r), generator=generator)
    return vera_A.T, vera_B.T


def vera_vectors(r: int, k: int, d_initial: float = D_INITIAL,
                 dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """The trained vectors at step 0, as PEFT starts them: d = d_initial (r numbers), b = 0 (k numbers).

    PEFT makes d in float32 and casts it to the model's dtype, so d_initial is rounded to float32 first
    (0.1 starts as 0.100000001490116…, in a float64 model too).
    """
    return (torch.full((r,), float(d_initial), dtype=torch.float32).to(dtype), torch.zeros(k, dtype=dtype))


def vera_delta(A: torch.Tensor, B: torch.Tensor, d_vec: torch.Tensor, b_vec: torch.Tensor) -> torch.Tensor:
    """ΔW = A·diag(d)·B·diag(b) (d×k)."""
    return (A * d_vec) @ B * b_vec


def vera_forward(X: torch.Tensor, W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, d_vec: torch.Tensor,
                 b_vec: torch.Tensor) -> VeraForward:
    """Q = X·W + ((X·A)·diag(d)·B)·diag(b), in PEFT's order: the low-rank path never forms ΔW."""
    check_lora_shapes(W, A, B)
    if X.shape[1] != W.shape[0]:
        raise ValueError(f"X is {X.shape[0]}×{X.shape[1]} but W is {W.shape[0]}×{W.shape[1]}")
    if d_vec.shape != (A.shape[1],) or b_vec.shape != (W.shape[1],):
        raise ValueError(f"d must have r = {A.shape[1]} numbers and b k = {W.shape[1]}; "
                         f"got {tuple(d_vec.shape)} and {tuple(b_vec.shape)}")
    base = X @ W
    delta = b_vec * (((X @ A) * d_vec) @ B)
    return VeraForward(base, delta, base + delta)
