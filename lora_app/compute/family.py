"""The Family page's cached calls: each variant of LoRA on the example's matrices, and all six trained on one task.

Every number comes from ``lora_core`` (nf4, dora, pissa, vera, loraplus, family), on the app's device in its
dtype, and is handed to the page as read-only numpy arrays. Each part asks only for what it shows.
The task is the Training page's: T = X·(W + ΔW*) with a seeded rank-r* ΔW* (``lora_core.make_target``).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import streamlit as st
import torch

from lora_core import default_dtype, lora_forward, make_target
from lora_core.dora import column_norms
from lora_core.family import VARIANTS, FamilySettings, VariantSize, family_run, train, variant_size
from lora_core.nf4 import BLOCKSIZE, nf4_bits_per_weight, nf4_levels, nf4_quantize
from lora_core.pissa import pissa_init
from lora_core.vera import vera_delta, vera_projections, vera_vectors

from ..config.family import WEIGHT_DECAY, FamilyConfig
from .device import device_choice, to_numpy
from .explore import explore_arrays

# the comparison trains six variants; where their steps would take longer than FAMILY_SECONDS it trains fewer
FAMILY_SECONDS = 3.0   # the longest the six runs may take together on the project's 2-core machine
MACS_PER_S, STEP_OVERHEAD_S = 2.0e10, 3.3e-4  # one step of one variant: the fit in bench/bench_family.py (2 cores, float64)
REFERENCE = (4096, 4096, 16)  # a 7B model's attention projection at r = 16: the sizes people train at


def settings(cfg: FamilyConfig, steps: int | None = None) -> FamilySettings:
    ex = cfg.example
    return FamilySettings(r=ex.r, alpha=ex.alpha, rslora=ex.rslora, lr=cfg.lr, steps=cfg.steps if steps is None else steps,
                          seed=ex.seed, weight_decay=WEIGHT_DECAY, ratio=cfg.ratio, double_quant=cfg.double_quant)


def step_macs(variant: str, n: int, d: int, k: int, r: int) -> int:
    """Multiply-adds of one step: X·W (n·d·k), the adapter's path forward and back (3·n·r·(d + k)); DoRA also
    forms W + s·A·B and its norms, and takes their gradient (3·d·r·k)."""
    return n * d * k + 3 * n * r * (d + k) + (3 * d * r * k if variant == "dora" else 0)


def step_seconds(n: int, d: int, k: int, r: int) -> float:
    """One step of every variant, on the project's 2-core machine (the fit in bench/bench_family.py)."""
    return sum(step_macs(v, n, d, k, r) / MACS_PER_S + STEP_OVERHEAD_S for v in VARIANTS)


def steps_for(cfg: FamilyConfig) -> int:
    """The steps the comparison trains: the config's, or fewer where the six runs would take too long."""
    ex = cfg.example
    return max(1, min(cfg.steps, int(FAMILY_SECONDS / step_seconds(ex.n, ex.d, ex.k, ex.r))))


def _tensors(cfg: FamilyConfig):
    """X, W, A, B of the example and the task's T, as tensors on the app's device."""
    device = device_choice().device
    dtype = default_dtype(device)
    arrays = explore_arrays(cfg.example)
    X, W, A, B = (torch.tensor(a, dtype=dtype, device=device) for a in (arrays.X, arrays.W, arrays.A, arrays.B))
    T = make_target(X, W, r_star=cfg.rstar, seed=cfg.example.seed).T
    return X, W, A, B, T, arrays.scaling


def _np(t) -> np.ndarray:
    arr = to_numpy(t) if torch.is_tensor(t) else np.asarray(t, dtype=float)
    arr.flags.writeable = False
    return arr


class QloraView(NamedTuple):
    W: np.ndarray
    codes: np.ndarray         # d×k, 0–15
    levels: np.ndarray        # d×k: each weight's NF4 level, W̃/absmax of its block
    absmax: np.ndarray        # one per block of 64 of Wᵀ read row by row
    block: np.ndarray         # d×k: each weight's block
    W_tilde: np.ndarray       # the dequantized W̃
    error: np.ndarray         # W − W̃
    bits: float               # bits per weight as stored, with the config's double quantization
    bits_other: float         # with the other choice
    q_over_W: np.ndarray      # X·(W + s·A·B)
    q_over_W_tilde: np.ndarray  # X·(W̃ + s·A·B)
    all_levels: np.ndarray    # the sixteen NF4 levels
    scaling: float


@st.cache_data(max_entries=32, max_size="256MB", show_spinner=False)
def qlora_view(cfg: FamilyConfig) -> QloraView:
    X, W, A, B, _, s = _tensors(cfg)
    q = nf4_quantize(W)
    W_tilde = q.dequantized.to(W.dtype)
    levels = nf4_levels().to(W.device)[q.codes]
    return QloraView(_np(W), _np(q.codes), _np(levels), _np(q.absmax), _np(q.block), _np(W_tilde), _np(W - W_tilde),
                     nf4_bits_per_weight(BLOCKSIZE, cfg.double_quant), nf4_bits_per_weight(BLOCKSIZE, not cfg.double_quant),
                     _np(lora_forward(X, W, A, B, s).q), _np(lora_forward(X, W_tilde, A, B, s).q), _np(nf4_levels()), s)


class DoraView(NamedTuple):
    V: np.ndarray             # W + s·A·B
    m_start: np.ndarray       # m at the start (k): ‖W + s·A·B‖ per column, or an uploaded adapter's m
    direction: np.ndarray     # V/‖V‖, unit columns
    m_after: np.ndarray | None       # m after one AdamW step on the task (None: a zero column, no step)
    direction_after: np.ndarray | None
    turned_deg: np.ndarray | None    # the angle each column's direction turned in that step, in degrees
    loss_before: float
    loss_after: float
    lr: float
    zero_columns: tuple[int, ...] = ()  # columns of W + s·A·B that are all zero: no direction, m/‖V‖ undefined


@st.cache_data(max_entries=32, max_size="256MB", show_spinner=False)
def dora_view(cfg: FamilyConfig) -> DoraView:
    """DoRA from the example's A and B, with m = ‖W + s·A·B‖ (so that it starts as LoRA) or an uploaded adapter's m,
    and one step."""
    X, W, A, B, T, s = _tensors(cfg)
    m = torch.tensor(cfg.magnitude, dtype=W.dtype, device=W.device) if cfg.magnitude else column_norms(W, A, B, s)
    V = W + s * (A @ B)
    norm = torch.linalg.vector_norm(V, dim=0)
    zero = tuple(int(j) for j in torch.nonzero(norm == 0).flatten())
    if zero:  # DoRA divides by ‖V‖ (PEFT too): a zero column has no direction, and no step can be taken
        direction = torch.where(norm > 0, V / torch.where(norm > 0, norm, 1.0), torch.zeros_like(V))
        return DoraView(_np(V), _np(m), _np(direction), None, None, None, math.nan, math.nan, cfg.lr, zero)
    run = train("dora", X, T, {"A": A, "B": B, "m": m}, {"W": W}, settings(cfg), steps=1)
    V1 = W + s * (run.params["A"] @ run.params["B"])
    d0, d1 = V / norm, V1 / torch.linalg.vector_norm(V1, dim=0)
    cos = torch.clamp((d0 * d1).sum(dim=0), -1.0, 1.0)
    return DoraView(_np(V), _np(m), _np(d0), _np(run.params["m"]), _np(d1), _np(torch.rad2deg(torch.arccos(cos))),
                    run.losses[0], run.losses[1], cfg.lr)


class PissaView(NamedTuple):
    W: np.ndarray
    sigma: np.ndarray         # W's singular values
    A: np.ndarray
    B: np.ndarray
    principal: np.ndarray     # s·A·B: W's best rank-r part
    W_res: np.ndarray         # the frozen residual
    principal_share: float    # of ‖W‖²_F
    rebuilt_error: float      # max |W_res + s·A·B − W|
    scaling: float


@st.cache_data(max_entries=32, max_size="256MB", show_spinner=False)
def pissa_view(cfg: FamilyConfig) -> PissaView:
    _, W, _, _, _, s = _tensors(cfg)
    init = pissa_init(W, cfg.example.r, s)
    principal = s * (init.A @ init.B)
    return PissaView(_np(W), _np(init.sigma), _np(init.A), _np(init.B), _np(principal), _np(init.W_res),
                     init.principal_share, float((init.W_res + principal - W).abs().max()), s)


class VeraView(NamedTuple):
    A: np.ndarray             # d×r, random and frozen
    B: np.ndarray             # r×k, random and frozen
    d0: np.ndarray            # 1×r at step 0
    b0: np.ndarray            # 1×k at step 0
    d_vec: np.ndarray         # 1×r after the comparison's run
    b_vec: np.ndarray         # 1×k after it
    delta_W: np.ndarray       # A·diag(d)·B·diag(b) after it
    steps: int


@st.cache_data(max_entries=32, max_size="256MB", show_spinner=False)
def vera_view(cfg: FamilyConfig) -> VeraView:
    ex = cfg.example
    A, B = vera_projections(ex.d, ex.k, ex.r, key=ex.seed)
    d0, b0 = vera_vectors(ex.r, ex.k)
    comp = comparison(cfg)
    d_vec, b_vec = (torch.from_numpy(np.array(comp.runs["vera"].params[name])) for name in ("d", "b"))
    delta = vera_delta(A.to(torch.float64), B.to(torch.float64), d_vec, b_vec)
    return VeraView(_np(A), _np(B), _np(d0[None]), _np(b0[None]), _np(d_vec[None]), _np(b_vec[None]), _np(delta),
                    comp.steps)


class VariantRun(NamedTuple):
    losses: np.ndarray        # before each step, then after the last
    trained: int
    lrs: dict                 # each trained tensor's learning rate
    params: dict              # the trained tensors after the last step, numpy


class Comparison(NamedTuple):
    runs: dict                # variant → VariantRun, in VARIANTS' order
    steps: int                # the steps trained (fewer than asked for at large sizes)
    sizes: dict               # variant → VariantSize at the example's d, k, r
    reference: dict           # variant → VariantSize at REFERENCE
    shape: tuple


@st.cache_data(max_entries=16, max_size="256MB", show_spinner="Training the six variants…")
def comparison(cfg: FamilyConfig) -> Comparison:
    """Every variant trained on the task for the same steps, from the same seed, by the core."""
    X, W, _, _, T, _ = _tensors(cfg)
    steps = steps_for(cfg)
    s = settings(cfg, steps)
    runs = {}
    for variant in VARIANTS:
        run = family_run(variant, X, W, T, s)
        runs[variant] = VariantRun(_np(np.array(run.losses)), run.trained, dict(run.lrs),
                                   {name: _np(p) for name, p in run.params.items()})
    ex = cfg.example
    sizes = {v: variant_size(v, ex.d, ex.k, ex.r, double_quant=cfg.double_quant) for v in VARIANTS}
    reference = {v: variant_size(v, *REFERENCE, double_quant=cfg.double_quant) for v in VARIANTS}
    return Comparison(runs, steps, sizes, reference, (ex.d, ex.k, ex.r))


def fell_fastest(res: Comparison) -> tuple[str, float]:
    """The variant with the lowest final loss, and its final loss (a diverged run, NaN or inf, never wins)."""
    finals = {v: float(run.losses[-1]) for v, run in res.runs.items() if math.isfinite(float(run.losses[-1]))}
    if not finals:
        return "", math.nan
    best = min(finals, key=lambda v: (finals[v], VARIANTS.index(v)))
    return best, finals[best]


__all__ = ["Comparison", "DoraView", "PissaView", "QloraView", "VariantRun", "VariantSize", "VeraView", "comparison",
           "dora_view", "fell_fastest", "pissa_view", "qlora_view", "steps_for", "vera_view"]
