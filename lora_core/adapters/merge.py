"""Merging LoRA adapters as PEFT's ``add_weighted_adapter`` does, op for op, one module at a time.

Each adapter i brings, for the module, A_i (d×r_i), B_i (r_i×k) and its scaling s_i; its update is ΔW_i = s_i·A_i·B_i.
PEFT works on its stored factors, lora_A = Aᵀ (r×d) and lora_B = Bᵀ (k×r), and so does this module, so that the
numbers are PEFT's; the result comes back in the seed's orientation. The merged adapter has r = lora_alpha (its
scaling is 1; PEFT keeps the first adapter's use_rslora, which would make it √r: written here without it).

- ``linear``: lora_A = Σ √|w_i·s_i|·sign(w_i·s_i)·lora_A_i and lora_B = Σ √|w_i·s_i|·lora_B_i, all ranks equal.
  Its ΔW is Σ_i Σ_j ±√|w_i s_i|·√|w_j s_j|·A_i·B_j: the wanted Σ w_i·ΔW_i plus cross terms A_i·B_j (i ≠ j).
- ``cat``: the factors side by side, A = [w₁s₁A₁, w₂s₂A₂, …] and B stacked: exact, rank Σ r_i.
- ``svd``: the exact Σ w_i·ΔW_i formed (k×d, as PEFT's ``get_delta_weight``), cut to its top ``svd_rank``
  singular directions (by default the largest r_i): lora_B = U·S, lora_A = Vh.
- ``ties``: on the stacked lora_A's and, apart, the lora_B's (weighted as in linear): each keeps its ``density``
  largest-magnitude entries; each entry's sign is elected by the weighted sum; the entries agreeing with it are
  averaged.
- ``dare_linear``: each factor keeps each entry with probability ``density`` and is divided by it (a Bernoulli
  draw from a generator seeded with ``seed``, in the order PEFT draws: module by module, the lora_A's, then the
  lora_B's, adapter by adapter), then summed as in linear.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

COMBINATIONS = ("linear", "cat", "svd", "ties", "dare_linear")
SAME_RANK = ("linear", "ties", "dare_linear")


class Factors(NamedTuple):
    A: torch.Tensor   # d×r
    B: torch.Tensor   # r×k
    scaling: float


class Merged(NamedTuple):
    A: torch.Tensor          # d×r_new
    B: torch.Tensor          # r_new×k
    r: int                   # its rank (lora_alpha = r, so its scaling is 1)


def merged_rank(ranks: Sequence[int], combination: str, svd_rank: int | None = None) -> int:
    if combination not in COMBINATIONS:
        raise ValueError(f"{combination!r} is not a combination; choose from {', '.join(COMBINATIONS)}")
    if combination in SAME_RANK and len(set(ranks)) != 1:
        raise ValueError(f"{combination} needs every adapter at the same r; these have r = "
                         f"{', '.join(map(str, ranks))} (cat and svd take any ranks)")
    if combination == "cat":
        return sum(ranks)
    if combination == "svd":
        return svd_rank or max(ranks)
    return ranks[0]


def _weights(weights: Sequence[float], scalings: Sequence[float]) -> tuple[torch.Tensor, torch.Tensor]:
    """PEFT's √|w·s| with the sign on lora_A's side only, as a float32 tensor (``torch.tensor`` of Python floats)."""
    wa, wb = [], []
    for w, s in zip(weights, scalings):
        ws = w * s
        sign = 1 if ws >= 0 else -1
        wa.append(math.sqrt(abs(ws)) * sign)
        wb.append(math.sqrt(abs(ws)))
    return torch.tensor(wa), torch.tensor(wb)


def _weighted(stack: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    return stack * weights.view(weights.shape + (1,) * (stack.dim() - 1))


def _magnitude_prune(t: torch.Tensor, density: float) -> torch.Tensor:
    if density >= 1:
        return t
    mask = torch.zeros_like(t).reshape(-1)
    top = torch.topk(t.abs().reshape(-1), k=int(density * t.numel()), largest=True)
    mask[top[1]] = 1
    return t * mask.reshape(t.shape)


def _random_prune(t: torch.Tensor, density: float, generator: torch.Generator) -> torch.Tensor:
    if density >= 1:
        return t
    mask = torch.bernoulli(torch.full_like(t, density), generator=generator)
    return t * mask / density


def _combine(tensors: list[torch.Tensor], weights: torch.Tensor, combination: str, density: float,
             generator: torch.Generator | None) -> torch.Tensor:
    if combination == "dare_linear":
        tensors = [_random_prune(t, density, generator) for t in tensors]
    elif combination == "ties":
        tensors = [_magnitude_prune(t, density) for t in tensors]
    stack = torch.stack(tensors, dim=0)
    if combination != "ties":
        return _weighted(stack, weights.to(stack.device)).sum(dim=0)
    majority = torch.where(stack.sum(dim=0) >= 0, 1, -1)          # PEFT's "total" sign election
    agree = stack.sign() == majority
    weighted = _weighted(stack, weights.to(stack.device))
    return (weighted * agree).sum(dim=0) / torch.clamp(agree.sum(dim=0), min=1.0)


def merge_module(factors: Sequence[Factors], weights: Sequence[float], combination: str, *,
                 svd_rank: int | None = None, density: float = 1.0,
                 generator: torch.Generator | None = None) -> Merged:
    """One module's merged A and B (seed orientation), as PEFT's ``add_weighted_adapter`` computes them."""
    if len(factors) != len(weights) or not factors:
        raise ValueError(f"{len(factors)} adapters and {len(weights)} weights: give one weight per adapter")
    if combination in ("ties", "dare_linear") and not 0 <= density <= 1:
        raise ValueError(f"the density must be in [0, 1], got {density!r}")
    ranks = [f.A.shape[1] for f in factors]
    combination = "linear" if len(factors) == 1 else combination   # PEFT merges one adapter linearly
    r = merged_rank(ranks, combination, svd_rank)
    lora_A = [f.A.T for f in factors]          # r×d, PEFT's stored orientation
    lora_B = [f.B.T for f in factors]          # k×r
    dtype = lora_A[0].dtype
    if combination == "cat":
        A = torch.cat([a * w * f.scaling for a, w, f in zip(lora_A, weights, factors)], dim=0)
        B = torch.cat(lora_B, dim=1)
        return Merged(A.T.contiguous(), B.T.contiguous(), r)
    if combination == "svd":
        deltas = [(b @ a) * f.scaling for a, b, f in zip(lora_A, lora_B, factors)]   # k×d, get_delta_weight
        delta = _weighted(torch.stack(deltas, 0), torch.tensor(list(weights)).to(deltas[0].device)).sum(0)
        U, S, Vh = torch.linalg.svd(delta, full_matrices=True)
        new_B = U[:, :r] @ torch.diag(S[:r])
        new_A = Vh[:r, :]
        return Merged(new_A.T.contiguous(), new_B.T.contiguous(), r)
    wa, wb = _weights(weights, [f.scaling for f in factors])
    A = _combine(lora_A, wa, combination, density, generator).to(dtype)
    B = _combine(lora_B, wb, combination, density, generator).to(dtype)
    return Merged(A.T.contiguous(), B.T.contiguous(), r)


def merge_adapters(adapters: Sequence[dict[str, Factors]], weights: Sequence[float], combination: str, *,
                   svd_rank: int | None = None, density: float = 1.0, seed: int = 0) -> dict[str, Merged]:
    """Every module any of the adapters adapts, merged, in the order the adapters name them (the first adapter's
    modules first): the order DARE draws in. PEFT merges a module that only some adapters adapt from those alone;
    so does this.
    """
    if len(adapters) != len(weights) or not adapters:
        raise ValueError(f"{len(adapters)} adapters and {len(weights)} weights: give one weight per adapter")
    generator = torch.Generator().manual_seed(seed) if combination == "dare_linear" else None
    names = list(dict.fromkeys(name for a in adapters for name in a))
    out = {}
    for name in names:
        present = [(a[name], w) for a, w in zip(adapters, weights) if name in a]
        out[name] = merge_module([f for f, _ in present], [w for _, w in present], combination, svd_rank=svd_rank,
                                 density=density, generator=generator)
    return out
