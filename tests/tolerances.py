"""Tolerances for the oracle tests, derived from the dtype's epsilon and the size of what is compared.

Two correct computations of the same quantity differ only by rounding. Each rounding is at most half
an ulp, and which roundings happen depends on the order of every sum: another formula, another BLAS
kernel, another thread count, or MKL handing a busy machine's threads around, each gives another
order. So a comparison allows

    ULPS · eps · √depth · growth        relative to the size of what is compared

- ``depth`` is how many independent roundings can pile up in the compared result: the length of a
  reduction, or the number of optimizer steps of a training run. Rounding errors are not adversarial,
  so n of them add like a random walk, to about √n ulps (Higham & Mary, "A new approach to
  probabilistic rounding error analysis", SISC 2019). The worst case grows like n, √n times faster:
  over a 50-step float32 run it would barely tell a scaling off by 1e-4 from rounding.
- ``ULPS`` = 4 ulps per √depth is λ = 8 in that paper's units of u = eps/2: the probability that honest
  rounding exceeds it is at most about 2·depth·exp(−λ²/2), under 1e-11 for every depth here, so a red
  run means a real difference, not bad luck.
- ``growth`` is how much the computation magnifies a difference of one ulp. A single product does not
  (growth 1); a training run can: a loss landscape steeper than 2/lr in some direction makes two runs
  that start an ulp apart drift apart, step after step. No formula knows that for a given run, so the
  training tests measure it: they rerun the oracle from a start nudged by one ulp (:func:`nudge`), and
  ``growth`` is how many ulps apart the two oracle runs end (:func:`ulps_apart`).
- the size: a loss against its own value; a tensor against its largest entry (its small entries carry
  the rounding of the large ones they were summed from); a difference such as W_after − W_before
  against the size of the weights it was taken from.

Every bound here can still fail. In the float32 PEFT run (test_finetune_peft) the losses are allowed
about 800 ulps and are 16 apart; a scaling off by 1e-4 puts them 5 900 ulps apart, weight decay applied
after the update 9 300, no weight decay 22 800, bias corrections one step off 1.8 million. In float64
the same defects land 10¹⁰ times beyond the bound.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from lora_core.attention import split_heads

ULPS = 4


def eps(dtype: torch.dtype) -> float:
    """The spacing of the dtype's numbers just above 1: one ulp, relative."""
    return torch.finfo(dtype).eps


def rel_tol(dtype: torch.dtype, depth: float = 1, growth: float = 1.0) -> float:
    """ULPS ulps per √depth, times the measured growth (never below 1): see the module's docstring."""
    return ULPS * eps(dtype) * math.sqrt(depth) * max(1.0, growth)


def nudge(t: torch.Tensor) -> torch.Tensor:
    """Every entry moved up by exactly one ulp: the smallest change the dtype can make."""
    return torch.nextafter(t, torch.full_like(t, math.inf))


def product_size(*factors: torch.Tensor) -> float:
    """The largest entry of |F1|·|F2|·…: what a product's rounding is proportional to (|fl(AB) − AB| ≤ γₙ·|A|·|B|),
    even where the product itself cancels to something small."""
    out = factors[0].abs()
    for f in factors[1:]:
        out = out @ f.abs()
    return float(out.max()) if out.numel() else 0.0


def attention_sizes(X: torch.Tensor, Ws: dict, lora: dict, heads: int, scaling: float) -> dict:
    """Multi-head attention (lora_core.attention): what each result's rounding is proportional to, and how
    many sums in a row make it. ``Ws`` maps q, k, v, o to W; ``lora`` maps some of them to (A, B).

    A projection is measured against |X|·(|W| + |s|·|A|·|B|), the scores against the same product of those sizes.
    exp turns an absolute error in a score into a relative one in its weight (twice, with the normalising sum),
    so the context is known to (1 + 2·max|S|) times the size of V, and the output sums it through |W_O|.
    """
    eff = {t: W.abs() + (abs(scaling) * lora[t][0].abs() @ lora[t][1].abs() if t in lora else 0) for t, W in Ws.items()}
    Q, K, V = (X.abs() @ eff[t] for t in "qkv")
    n, d_model, d_head = X.shape[0], X.shape[1], Q.shape[1] // heads
    scores = float((split_heads(Q, heads) @ split_heads(K, heads).transpose(-1, -2)).max()) / math.sqrt(d_head)
    context = float(V.max()) * (1 + 2 * scores)
    r = max((A.shape[1] for A, _ in lora.values()), default=0)
    depth = d_model + d_head + 2 * n + V.shape[1] + 2 * r  # X·W, scores, softmax's sum, weights·V, ·W_O, LoRA twice
    return {"scores": scores, "weights": 1 + 2 * scores, "context": context,
            "out": context * float(eff["o"].sum(0).max()), "depth": depth}


def ulps_apart(actual, expected, dtype: torch.dtype | None = None, scale: float | None = None) -> float:
    """How far apart two results are, in ulps of their size.

    Tensors: max|actual − expected| over ``scale`` (default max|expected|). Sequences of numbers (a loss
    curve, in ``dtype``): the largest gap of a pair over its own size.
    """
    if torch.is_tensor(expected):
        dtype = dtype or expected.dtype
        gap = float((actual.double() - expected.double()).abs().max()) if expected.numel() else 0.0
        size = scale if scale is not None else float(expected.double().abs().max()) if expected.numel() else 0.0
        return gap / (size * eps(dtype)) if size else (0.0 if gap == 0 else math.inf)
    if len(actual) != len(expected):
        raise ValueError(f"{len(actual)} numbers against {len(expected)}")
    gaps = [abs(a - b) / abs(b) if b else (0.0 if a == b else math.inf) for a, b in zip(actual, expected)]
    return max(gaps, default=0.0) / eps(dtype)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, *, depth: float = 1, growth: float = 1.0,
                 scale: float | None = None, what: str = "") -> None:
    """Every |actual − expected| ≤ rel_tol · scale, where scale is max|expected| unless given."""
    size = scale if scale is not None else float(expected.abs().max()) if expected.numel() else 0.0
    tol = rel_tol(expected.dtype, depth, growth)
    torch.testing.assert_close(
        actual, expected, rtol=0, atol=tol * size,
        msg=lambda m: f"{what + ': ' if what else ''}{ulps_apart(actual, expected, scale=size):.1f} ulps apart, "
                      f"{tol / eps(expected.dtype):.1f} allowed (depth {depth}, growth {growth:.1f})\n{m}")


def assert_each_close(actual: Sequence[float], expected: Sequence[float], dtype: torch.dtype, *,
                      depth: float = 1, growth: float = 1.0, what: str = "") -> None:
    """Numbers such as a loss curve: each within rel_tol of its own size."""
    apart = ulps_apart(actual, expected, dtype)
    allowed = rel_tol(dtype, depth, growth) / eps(dtype)
    assert apart <= allowed, (f"{what + ': ' if what else ''}{apart:.1f} ulps apart, {allowed:.1f} allowed "
                              f"(depth {depth}, growth {growth:.1f})")
