"""PiSSA (Meng et al. 2024): start A and B on W's principal singular directions, and freeze the rest.

With W = U·diag(σ)·Vᵀ (d×k), A = U[:, :r]·diag(√(σ_r/s)) and B = diag(√(σ_r/s))·V[:, :r]ᵀ, so that s·A·B is W's
best rank-r approximation. The frozen base becomes the residual W_res = W − s·A·B, and W_res + s·A·B = W: the
model is unchanged at step 0, as with LoRA, but because the base gave up what the adapter holds, not because
B = 0. PEFT's ``init_lora_weights="pissa"`` does this on the stored Wᵀ, whose singular vectors are V and U.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from .checks import positive_int


class PissaInit(NamedTuple):
    A: torch.Tensor          # d×r: the top r left singular vectors, each times √(σ_i/s)
    B: torch.Tensor          # r×k: the top r right singular vectors, each times √(σ_i/s)
    W_res: torch.Tensor      # d×k: W − s·A·B, the frozen base
    sigma: torch.Tensor      # min(d, k): W's singular values, largest first
    principal_share: float   # Σ σ_i² over the top r, over Σ σ_i²: the share of ‖W‖²_F the adapter takes


def pissa_init(W: torch.Tensor, r: int, scaling: float = 1.0) -> PissaInit:
    d, k = W.shape
    positive_int("rank r", r)
    if r > min(d, k):
        raise ValueError(f"rank r = {r} is more than W has: W is {d}×{k}, so r ≤ {min(d, k)}")
    if not scaling > 0:
        raise ValueError(f"the scaling s must be positive, got {scaling!r}")
    U, sigma, Vh = torch.linalg.svd(W, full_matrices=False)
    root = torch.sqrt(sigma[:r] / scaling)
    A = U[:, :r] * root
    B = root[:, None] * Vh[:r]
    energy = sigma.square()
    total = float(energy.sum())
    return PissaInit(A, B, W - scaling * (A @ B), sigma, float(energy[:r].sum()) / total if total > 0 else 0.0)
