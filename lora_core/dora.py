"""DoRA (Liu et al. 2024): LoRA's update, split into a direction and a magnitude per output column.

In the seed's notation, with V = W + s·A·B (d×k) and ‖V‖ the norm of each of its k columns:
W′ = m ⊙ V/‖V‖, so each column of W′ has length m_j and the direction of V's column. m (k numbers) trains
beside A and B, and starts at ‖W + s·A·B‖, so that W′ = W + s·A·B at step 0 (W itself when B = 0).

PEFT (``LoraConfig(use_dora=True)``) takes the norm as a constant for the gradient (section 4.3 of the paper:
it saves the memory of the norm's backward, and the authors found no loss of accuracy), and so does this
module: the gradient reaches A, B and m through V and m, not through ‖V‖.
"""
from __future__ import annotations

from typing import NamedTuple

import torch

from .lora import check_lora_shapes


class DoraForward(NamedTuple):
    norm: torch.Tensor       # k: ‖W + s·A·B‖ per output column, a constant for the gradient
    direction: torch.Tensor  # d×k: (W + s·A·B)/‖W + s·A·B‖, unit columns
    weight: torch.Tensor     # d×k: W′ = m ⊙ direction, the weight the layer uses
    q: torch.Tensor          # n×k: X·W′


def column_norms(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, scaling: float = 1.0) -> torch.Tensor:
    """‖W + s·A·B‖ per output column (k numbers): DoRA's starting magnitude, and the norm it divides by."""
    check_lora_shapes(W, A, B)
    return torch.linalg.vector_norm(W + scaling * (A @ B), dim=0)


def dora_forward(X: torch.Tensor, W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, m: torch.Tensor,
                 scaling: float = 1.0) -> DoraForward:
    """Q = X·(m ⊙ (W + s·A·B)/‖W + s·A·B‖), computed as PEFT computes it: the base and the low-rank path apart,
    each times m/‖·‖, with the norm detached."""
    check_lora_shapes(W, A, B)
    if X.shape[1] != W.shape[0]:
        raise ValueError(f"X is {X.shape[0]}×{X.shape[1]} but W is {W.shape[0]}×{W.shape[1]}")
    if m.shape != (W.shape[1],):
        raise ValueError(f"the magnitude m has {tuple(m.shape)} numbers; W has {W.shape[1]} output columns")
    norm = column_norms(W, A, B.detach(), scaling).detach()
    ratio = m / norm
    q = ratio * (X @ W) + ratio * (scaling * ((X @ A) @ B))
    direction = (W + scaling * (A @ B)) / norm
    return DoraForward(norm, direction, m * direction, q)
