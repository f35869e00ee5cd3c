"""Rank and low-rank approximation: why a rank-r update A·B can (or cannot) stand in for a full ΔW.

By Eckart–Young, the truncated SVD is the best rank-r approximation in Frobenius norm, and its
relative error is √(Σ_{i>r} σᵢ² / Σ σᵢ²): the singular values a rank-r LoRA cannot reach.
"""
from __future__ import annotations

import math
import zlib
from typing import NamedTuple

import torch

from .checks import positive_int


class BestRankR(NamedTuple):
    approx: torch.Tensor  # M_r = U_r·diag(σ_r)·V_rᵀ, d×k
    A: torch.Tensor       # d×r, U_r·diag(√σ_r)  so that A·B = M_r (LoRA's shapes)
    B: torch.Tensor       # r×k, diag(√σ_r)·V_rᵀ
    sigma: torch.Tensor   # all singular values of M, descending
    rel_error: float      # ‖M − M_r‖_F / ‖M‖_F


class RankErrorCurve(NamedTuple):
    r: torch.Tensor          # 1 … min(d, k)
    rel_error: torch.Tensor  # best relative Frobenius error at each rank
    sigma: torch.Tensor      # singular values, descending


def _check_matrix(M: torch.Tensor) -> None:
    if not isinstance(M, torch.Tensor) or M.dim() != 2 or min(M.shape) < 1:
        raise ValueError(f"expected a non-empty 2-D tensor, got {getattr(M, 'shape', type(M))}")
    if not torch.isfinite(M).all():
        raise ValueError("matrix has NaN or infinite entries")


def singular_values(M: torch.Tensor) -> torch.Tensor:
    """σ₁ ≥ σ₂ ≥ … ≥ σ_min(d,k) ≥ 0."""
    _check_matrix(M)
    return torch.linalg.svdvals(M)


def _tolerance(M: torch.Tensor, sigma: torch.Tensor) -> float:
    return float(sigma[0]) * max(M.shape) * torch.finfo(M.dtype).eps


def default_tolerance(M: torch.Tensor) -> float:
    """σ₁·max(d, k)·ε, the threshold numpy and torch.linalg.matrix_rank use: below it is rounding noise."""
    return _tolerance(M, singular_values(M))


def spectrum(M: torch.Tensor) -> tuple[torch.Tensor, float]:
    """M's singular values and :func:`default_tolerance`, from one SVD."""
    sigma = singular_values(M)
    return sigma, _tolerance(M, sigma)


def effective_rank(M: torch.Tensor, tol: float | None = None) -> int:
    """Number of singular values above ``tol`` (default: :func:`default_tolerance`)."""
    sigma = singular_values(M)
    if tol is None:
        tol = _tolerance(M, sigma)
    if not math.isfinite(tol) or tol < 0:
        raise ValueError(f"tol must be a non-negative number, got {tol!r}")
    return int((sigma > tol).sum())


def sigma_energy_share(sigma, r: int) -> float:
    """The share of Σσᵢ² held by the r largest of the singular values ``sigma`` (in any order; 0 when all are 0).

    By Eckart–Young it is 1 − (the best rank-r relative error)²: what a rank-r LoRA can reach of ΔW.
    """
    sq = sorted((float(s) ** 2 for s in sigma), reverse=True)
    total = math.fsum(sq)
    return math.fsum(sq[:max(r, 0)]) / total if total > 0 else 0.0


def _relative(tail_sq: torch.Tensor, total_sq: torch.Tensor) -> torch.Tensor:
    # a zero matrix is approximated exactly at every rank
    if float(total_sq) == 0.0:
        return torch.zeros_like(tail_sq)
    return torch.sqrt(tail_sq.clamp_min(0) / total_sq)


def best_rank_r(M: torch.Tensor, r: int) -> BestRankR:
    """Truncated SVD: the closest rank-≤r matrix to M in Frobenius norm (Eckart–Young)."""
    _check_matrix(M)
    r = positive_int("rank r", r)
    if r > min(M.shape):
        raise ValueError(f"rank r = {r} exceeds min(d, k) = {min(M.shape)}")
    return best_rank_r_from_svd(M, *torch.linalg.svd(M, full_matrices=False), r)


def best_rank_r_from_svd(M: torch.Tensor, U: torch.Tensor, S: torch.Tensor, Vh: torch.Tensor, r: int) -> BestRankR:
    """:func:`best_rank_r` from M's SVD (``torch.linalg.svd(M, full_matrices=False)``), computed once for every r."""
    r = positive_int("rank r", r)
    if r > S.numel():
        raise ValueError(f"rank r = {r} exceeds min(d, k) = {S.numel()}")
    root = S[:r].sqrt()
    # split √σ between the factors, as PiSSA does, so A and B have comparable scale
    A, B = U[:, :r] * root, root[:, None] * Vh[:r]
    approx = (U[:, :r] * S[:r]) @ Vh[:r]
    total = torch.linalg.matrix_norm(M)
    rel = 0.0 if float(total) == 0.0 else float(torch.linalg.matrix_norm(M - approx) / total)
    return BestRankR(approx, A, B, S, rel)


def rank_error_curve(M: torch.Tensor) -> RankErrorCurve:
    """Best relative error for every rank r = 1 … min(d, k), from the discarded singular values."""
    sigma = singular_values(M)
    sq = sigma.square()
    # tail[i] = Σ_{j>i} σ_j², what rank r = i + 1 leaves out; reversed cumsum avoids cancellation
    tail = sq.flip(0).cumsum(0).flip(0)[1:]
    tail = torch.cat([tail, tail.new_zeros(1)])
    ranks = torch.arange(1, sigma.numel() + 1)
    return RankErrorCurve(ranks, _relative(tail, sq.sum()), sigma)


def seeded_full_rank_update(d: int, k: int, seed: int, *, decay: float = 1.0,
                            dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """A deterministic d×k matrix of full rank min(d, k) with singular values σᵢ = i^(−decay).

    Built as U·diag(σ)·Vᵀ from orthonormal U, V (QR of seeded Gaussians), so its rank is exactly
    min(d, k). decay > 0 mimics a fine-tuning update whose energy sits in a few directions (the
    paper's low "intrinsic rank"); decay = 0 gives a flat spectrum that no low rank captures well.
    """
    d, k = positive_int("d", d), positive_int("k", k)
    if not math.isfinite(decay) or decay < 0:
        raise ValueError(f"decay must be a non-negative number, got {decay!r}")
    m = min(d, k)
    g = torch.Generator().manual_seed(zlib.crc32(f"rank:{seed}:{d}:{k}".encode()))
    U, _ = torch.linalg.qr(torch.randn(d, m, generator=g, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(k, m, generator=g, dtype=torch.float64))
    sigma = torch.arange(1, m + 1, dtype=torch.float64).pow(-decay)
    return ((U * sigma) @ V.T).to(dtype)
