"""How alike two LoRA updates are, from their factors.

The LoRA paper (Hu et al. 2021, section 7.2) compares the subspaces two adapters' A span: with U₁ and U₂ the
singular vectors of A₁ and A₂ (d×r₁, d×r₂, in the seed's orientation: PEFT's lora_A is r×d and the paper speaks
of its right-singular vectors), φ(A₁, A₂, i, j) = ‖U₁[:, :i]ᵀ·U₂[:, :j]‖²_F / min(i, j), in [0, 1]: 1 when one
top subspace holds the other, 0 when they are orthogonal. Figure 3 draws φ for i ≤ r₁ and j ≤ r₂.

The cosine of two updates, ⟨ΔW₁, ΔW₂⟩_F / (‖ΔW₁‖_F·‖ΔW₂‖_F), is s₁s₂·Σ (A₁ᵀA₂) ∘ (B₁B₂ᵀ) over the norms:
r₁×r₂ matrices, never d×k.
"""
from __future__ import annotations

import math

import torch

from .spectrum import check_factors


def left_singular_vectors(A: torch.Tensor) -> torch.Tensor:
    """U (d×r) of A = U·Σ·Vᵀ, columns ordered by σ, largest first (float64)."""
    U, _, _ = torch.linalg.svd(A.to(torch.float64), full_matrices=False)
    return U


def similarity_grid(A1: torch.Tensor, A2: torch.Tensor) -> torch.Tensor:
    """φ(A₁, A₂, i, j) for every i ≤ r₁ and j ≤ r₂ (an r₁×r₂ grid, row i−1 and column j−1)."""
    if A1.ndim != 2 or A2.ndim != 2 or A1.shape[0] != A2.shape[0]:
        raise ValueError(f"A₁ is {'×'.join(map(str, A1.shape))} and A₂ {'×'.join(map(str, A2.shape))}: "
                         "both must be d×r with the same d")
    M = (left_singular_vectors(A1).T @ left_singular_vectors(A2)).square()   # r₁×r₂
    cumulative = M.cumsum(0).cumsum(1)                                       # Σ over the top i rows, j columns
    i = torch.arange(1, M.shape[0] + 1, dtype=torch.float64)[:, None]
    j = torch.arange(1, M.shape[1] + 1, dtype=torch.float64)[None, :]
    return cumulative / torch.minimum(i, j)


def subspace_similarity(A1: torch.Tensor, A2: torch.Tensor, i: int, j: int) -> float:
    """φ(A₁, A₂, i, j) = ‖U₁[:, :i]ᵀ·U₂[:, :j]‖²_F / min(i, j)."""
    r1, r2 = A1.shape[1], A2.shape[1]
    if not (1 <= i <= r1 and 1 <= j <= r2):
        raise ValueError(f"i must be in 1…{r1} and j in 1…{r2}, got i = {i}, j = {j}")
    return float(similarity_grid(A1, A2)[i - 1, j - 1])


def delta_inner(A1, B1, s1: float, A2, B2, s2: float) -> float:
    """⟨s₁·A₁·B₁, s₂·A₂·B₂⟩_F from r₁×r₂ products."""
    check_factors(A1, B1)
    check_factors(A2, B2)
    A1, B1, A2, B2 = (t.to(torch.float64) for t in (A1, B1, A2, B2))
    return float(s1) * float(s2) * float(((A1.T @ A2) * (B1 @ B2.T)).sum())


def delta_cosine(A1, B1, s1: float, A2, B2, s2: float) -> float:
    """The cosine of two updates, from their factors; 0 when either is zero."""
    n1 = math.sqrt(max(delta_inner(A1, B1, s1, A1, B1, s1), 0.0))
    n2 = math.sqrt(max(delta_inner(A2, B2, s2, A2, B2, s2), 0.0))
    if n1 == 0 or n2 == 0:
        return 0.0
    return delta_inner(A1, B1, s1, A2, B2, s2) / (n1 * n2)
