"""The spectrum of a LoRA update ΔW = s·A·B (A d×r, B r×k), computed from its factors.

With A = Q_A·R_A and Bᵀ = Q_B·R_B (thin QR: Q_A is d×r, Q_B k×r, both with orthonormal columns),
ΔW = Q_A·(s·R_A·R_Bᵀ)·Q_Bᵀ, so its singular values are those of the r×r matrix s·R_A·R_Bᵀ: no d×k matrix is
formed, and a 4096×11008 update costs two thin QRs and one r×r SVD. At most r of them are non-zero.

From σ: the Frobenius norm √Σσ², the energy share of the top k directions Σ_{i≤k}σ²/Σσ², the stable rank
Σσ²/σ₁², and the effective rank of Roy and Vetterli (2007), exp(−Σ pᵢ·log pᵢ) with pᵢ = σᵢ/Σσ: 1 for a rank-one
update, r for r equal singular values.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch


def check_factors(A: torch.Tensor, B: torch.Tensor) -> None:
    """ValueError unless A is d×r and B r×k."""
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise ValueError(f"A is {'×'.join(map(str, A.shape))} and B {'×'.join(map(str, B.shape))}; "
                         "need A d×r and B r×k")


class Spectrum(NamedTuple):
    sigma: torch.Tensor       # r singular values of ΔW, largest first (float64)
    frobenius: float          # ‖ΔW‖_F
    effective_rank: float     # Roy and Vetterli's entropy-based rank, in [1, r] (0 for ΔW = 0)
    stable_rank: float        # ‖ΔW‖²_F / σ₁², in [1, r] (0 for ΔW = 0)


def delta_singular_values(A: torch.Tensor, B: torch.Tensor, scaling: float = 1.0) -> torch.Tensor:
    """The r singular values of s·A·B (largest first, float64), from two thin QRs and an r×r SVD; when r is above
    d or k, those past min(d, k) are exact zeros."""
    check_factors(A, B)
    A, B = A.to(torch.float64), B.to(torch.float64)
    _, R_A = torch.linalg.qr(A)            # r×r (min(d, r)×r when r > d)
    _, R_B = torch.linalg.qr(B.T)          # r×r (min(k, r)×r)
    sigma = torch.linalg.svdvals(float(scaling) * (R_A @ R_B.T))
    r = A.shape[1]
    return torch.cat([sigma, sigma.new_zeros(r - sigma.numel())]) if sigma.numel() < r else sigma


def effective_rank(sigma: torch.Tensor) -> float:
    """exp of the entropy of σ/Σσ (Roy and Vetterli): 0 for an all-zero σ."""
    total = float(sigma.sum())
    if total <= 0:
        return 0.0
    p = sigma[sigma > 0] / total
    return math.exp(float(-(p * torch.log(p)).sum()))


def stable_rank(sigma: torch.Tensor) -> float:
    """Σσ²/σ₁²: 0 for an all-zero σ."""
    top = float(sigma.max()) if sigma.numel() else 0.0
    return float(sigma.square().sum()) / top ** 2 if top > 0 else 0.0


def energy_share(sigma: torch.Tensor, k: int) -> float:
    """The share of ‖ΔW‖²_F in the top k singular directions: 0 for an all-zero σ."""
    if k < 0:
        raise ValueError(f"k must be 0 or more, got {k}")
    energy = sigma.square()
    total = float(energy.sum())
    return float(energy[:k].sum()) / total if total > 0 else 0.0


def spectrum(A: torch.Tensor, B: torch.Tensor, scaling: float = 1.0) -> Spectrum:
    sigma = delta_singular_values(A, B, scaling)
    return Spectrum(sigma, math.sqrt(float(sigma.square().sum())), effective_rank(sigma), stable_rank(sigma))
