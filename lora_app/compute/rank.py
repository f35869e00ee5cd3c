"""The Rank page's cached calls: the spectrum of ΔW = s·A·B, and a target ΔW* against its best rank-r copy."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import streamlit as st
import torch

from lora_core import delta_weight, param_counts
from lora_core.rank import best_rank_r, default_tolerance, rank_error_curve, seeded_full_rank_update, singular_values

from ..config.rank import RankConfig
from .explore import RANGE_SCAN_MAX_RANK, _np, explore_arrays


class RankArrays(NamedTuple):
    delta_W: np.ndarray        # s·A·B of the example, d×k
    delta_sigma: np.ndarray    # its singular values, descending
    delta_tol: float           # below this a singular value is rounding noise
    delta_rank: int            # how many are above it
    target: np.ndarray         # ΔW*, d×k
    target_sigma: np.ndarray
    approx: np.ndarray         # its best rank-r approximation (truncated SVD)
    rel_error: float           # ‖ΔW* − approx‖_F / ‖ΔW*‖_F
    ranks: np.ndarray          # 1 … min(d, k)
    rank_errors: np.ndarray    # the best relative error at each of those ranks
    lora_counts: np.ndarray    # r·(d + k) at each of those ranks
    full_count: int            # d·k
    break_even: float          # d·k/(d + k)
    z_copy: float              # one colour range for ΔW*, its copy and the rest, the same for every r (if small)


@st.cache_data(max_entries=32, show_spinner=False)
def seeded_target(d: int, k: int, seed: int, decay: float) -> np.ndarray:
    """ΔW* before any edits: full rank min(d, k), σᵢ = i^−decay."""
    return _np(seeded_full_rank_update(d, k, seed, decay=decay))


@st.cache_data(max_entries=32, show_spinner=False)
def _target_spectrum(d: int, k: int, seed: int, decay: float,
                     edits: tuple[tuple[int, int, float], ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, float | None]:
    """ΔW* with its edits, its singular values, its best error at every rank, and a colour range
    for ΔW*, its best rank-r copy and the difference that holds for every r (None when min(d, k) is
    too large to scan): none of it depends on r, so moving r leaves ΔW*'s heatmap as it is."""
    target = torch.from_numpy(seeded_target(d, k, seed, decay).copy())
    for i, j, value in edits:
        target[i, j] = value
    curve = rank_error_curve(target)
    z = None
    if min(d, k) <= RANGE_SCAN_MAX_RANK:
        U, S, Vh = torch.linalg.svd(target, full_matrices=False)
        approx, z = torch.zeros_like(target), float(target.abs().max())
        for i in range(S.numel()):  # the best rank-r copy is the sum of the first r singular triplets
            approx += S[i] * torch.outer(U[:, i], Vh[i])
            z = max(z, float(approx.abs().max()), float((target - approx).abs().max()))
    return target.numpy(), _np(curve.sigma), _np(curve.rel_error), z


@st.cache_data(max_entries=64, max_size="256MB", show_spinner=False)
def rank_arrays(cfg: RankConfig) -> RankArrays:
    ex, d, k, r = cfg.example, cfg.example.d, cfg.example.k, cfg.example.r
    # the SVDs run in float64 on the CPU: the point is to see σ at 1e-17, which float32 would blur
    arrays = explore_arrays(ex)
    delta_W = delta_weight(torch.from_numpy(arrays.A), torch.from_numpy(arrays.B), arrays.scaling)
    delta_sigma, tol = singular_values(delta_W), default_tolerance(delta_W)
    target, sigma, errors, z_all = _target_spectrum(d, k, ex.seed, cfg.decay, cfg.target_edits)
    best = best_rank_r(torch.from_numpy(target), r)
    approx = _np(best.approx)
    z_copy = z_all or max(float(np.abs(m).max()) for m in (target, approx, target - approx)) or 1.0
    ranks = np.arange(1, min(d, k) + 1)
    c = param_counts(d, k, r)
    return RankArrays(
        delta_W.numpy(), _np(delta_sigma), tol, int((delta_sigma > tol).sum()),  # the bars above the line
        target, sigma, approx, best.rel_error, ranks, errors, ranks * (d + k), c.full, c.break_even, z_copy,
    )
