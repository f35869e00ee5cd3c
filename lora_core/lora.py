"""LoRA on one linear map, in the seed's notation: Q = X·(W + s·A·B).

Shapes: X is n×d, the frozen W is d×k, A is d×r, B is r×k, and s = α/r (or α/√r with rsLoRA).
PEFT stores the same matrices transposed: ``base_layer.weight`` = Wᵀ (k×d),
``lora_A.weight`` = Aᵀ (r×d) and ``lora_B.weight`` = Bᵀ (k×r).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .checks import positive_int

# the blog post's example, exactly as printed there
SEED_X = [
    [0.1, 0.3, 0.5, 0.2, 0.0],
    [0.6, 0.7, 0.2, 0.1, 0.3],
    [0.4, 0.2, 0.6, 0.5, 0.1],
]
SEED_W = [
    [0.2, 0.1, 0.0],
    [0.0, 0.3, 0.2],
    [0.1, 0.0, 0.4],
    [0.3, 0.2, 0.1],
    [0.0, 0.2, 0.3],
]
SEED_A = [
    [0.1, 0.0],
    [0.2, 0.1],
    [0.1, 0.0],
    [0.0, 0.2],
    [0.1, 0.1],
]
SEED_B = [
    [0.2, 0.3, 0.1],
    [0.1, 0.2, 0.2],
]


class Example(NamedTuple):
    X: torch.Tensor  # n×d input rows (tokens)
    W: torch.Tensor  # d×k frozen pre-trained weight
    A: torch.Tensor  # d×r trainable down-projection
    B: torch.Tensor  # r×k trainable up-projection


class LoraForward(NamedTuple):
    base: torch.Tensor   # X·W, the frozen model's output
    delta: torch.Tensor  # s·X·A·B, what the adapter adds
    q: torch.Tensor      # base + delta


class ParamCounts(NamedTuple):
    full: int          # d·k numbers trained by full fine-tuning
    lora: int          # r·(d + k) numbers trained by LoRA
    break_even: float  # d·k/(d + k): LoRA trains fewer numbers only for r below this

    @property
    def lora_is_smaller(self) -> bool:
        return self.lora < self.full


def seed_example(dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> Example:
    """The seed's X (3×5), W_Q (5×3), A_Q (5×2) and B_Q (2×3); its equation has no scaling, so s = 1."""
    as_t = lambda rows: torch.tensor(rows, dtype=dtype, device=device)
    return Example(as_t(SEED_X), as_t(SEED_W), as_t(SEED_A), as_t(SEED_B))


def lora_scaling(alpha: float, r: int, rslora: bool = False) -> float:
    """s = α/r, or α/√r with rank-stabilised LoRA (PEFT's ``use_rslora``)."""
    positive_int("rank r", r)
    if not math.isfinite(alpha):
        raise ValueError(f"alpha must be finite, got {alpha!r}")
    return alpha / math.sqrt(r) if rslora else alpha / r


def check_lora_shapes(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor) -> None:
    """ValueError unless W is d×k, A d×r and B r×k."""
    d, k = W.shape
    if A.shape[0] != d or B.shape[1] != k or A.shape[1] != B.shape[0]:
        raise ValueError(
            f"shapes do not chain: W is {d}×{k}, A is {A.shape[0]}×{A.shape[1]}, "
            f"B is {B.shape[0]}×{B.shape[1]}; need A d×r and B r×k"
        )


def delta_weight(A: torch.Tensor, B: torch.Tensor, scaling: float = 1.0) -> torch.Tensor:
    """ΔW = s·A·B (d×k), PEFT's ``get_delta_weight`` transposed; its rank is at most r."""
    return scaling * (A @ B)


def merge(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, scaling: float = 1.0) -> torch.Tensor:
    """W + s·A·B: one matrix, so inference costs nothing extra."""
    check_lora_shapes(W, A, B)
    return W + delta_weight(A, B, scaling)


def unmerge(W_merged: torch.Tensor, A: torch.Tensor, B: torch.Tensor, scaling: float = 1.0) -> torch.Tensor:
    """Undo :func:`merge`: W = merged − s·A·B."""
    check_lora_shapes(W_merged, A, B)
    return W_merged - delta_weight(A, B, scaling)


def lora_forward(X: torch.Tensor, W: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                 scaling: float = 1.0) -> LoraForward:
    """Q = X·W + s·(X·A)·B, computed the way PEFT does: the low-rank path never forms ΔW."""
    check_lora_shapes(W, A, B)
    if X.shape[1] != W.shape[0]:
        raise ValueError(f"X is {X.shape[0]}×{X.shape[1]} but W is {W.shape[0]}×{W.shape[1]}")
    base = X @ W                         # n×k
    delta = scaling * ((X @ A) @ B)      # n×r then n×k
    return LoraForward(base, delta, base + delta)


def param_counts(d: int, k: int, r: int) -> ParamCounts:
    """Trainable numbers for one d×k matrix: full fine-tuning against LoRA at rank r."""
    for name, v in (("d", d), ("k", k), ("r", r)):
        positive_int(name, v)
    return ParamCounts(full=d * k, lora=r * (d + k), break_even=d * k / (d + k))


# --- initialisation schemes -------------------------------------------------------------

def init_peft_default(d: int, k: int, r: int, generator: torch.Generator | None = None,
                      dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """PEFT's ``init_lora_weights=True``: A ~ U(−1/√d, 1/√d) (kaiming-uniform, a=√5), B = 0.

    B = 0 makes ΔW = 0, so the adapted model starts exactly at the pre-trained one.
    """
    bound = 1.0 / math.sqrt(d)
    A = (torch.rand(d, r, generator=generator, dtype=dtype) * 2 - 1) * bound
    return A, torch.zeros(r, k, dtype=dtype)


def init_gaussian(d: int, k: int, r: int, generator: torch.Generator | None = None,
                  dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """PEFT's ``init_lora_weights="gaussian"``: A ~ N(0, (1/r)²), B = 0."""
    A = torch.randn(d, r, generator=generator, dtype=dtype) / r
    return A, torch.zeros(r, k, dtype=dtype)


def init_random(d: int, k: int, r: int, generator: torch.Generator | None = None,
                dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Both factors non-zero, so ΔW ≠ 0 from the start (like the seed's example)."""
    A = torch.randn(d, r, generator=generator, dtype=dtype) * 0.1
    B = torch.randn(r, k, generator=generator, dtype=dtype) * 0.1
    return A, B
