"""The Rank page's cached calls: the spectrum of ΔW = s·A·B, and a target ΔW* against its best rank-r copy."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import streamlit as st
import torch

from lora_core import delta_weight, param_counts
from lora_core.rank import best_rank_r, default_tolerance, rank_error_curve, seeded_full_rank_update, singular_values

from ..config.rank import RankConfig
from .explore import _np, explore_arrays


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


@st.cache_data(max_entries=32, show_spinner=False)
def seeded_target(d: int, k: int, seed: int, decay: float) -> np.ndarray:
    """ΔW* before any edits: full rank min(d, k), σᵢ = i^−decay."""
    return _np(seeded_full_rank_update(d, k, seed, decay=decay))


@st.cache_data(max_entries=32, show_spinner=False)
def _target_spectrum(d: int, k: int, seed: int, decay: float,
                     edits: tuple[tuple[int, int, float], ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ΔW* with its edits, its singular values and its best error at every rank: none of it depends on r."""
    target = torch.from_numpy(seeded_target(d, k, seed, decay).copy())
    for i, j, value in edits:
        target[i, j] = value
    curve = rank_error_curve(target)
    return target.numpy(), _np(curve.sigma), _np(curve.rel_error)


@st.cache_data(max_entries=64, max_size="256MB", show_spinner=False)
def rank_arrays(cfg: RankConfig) -> RankArrays:
    ex, d, k, r = cfg.example, cfg.example.d, cfg.example.k, cfg.example.r
    # the SVDs run in float64 on the CPU: the point is to see σ at 1e-17, which float32 would blur
    arrays = explore_arrays(ex)
    delta_W = delta_weight(torch.from_numpy(arrays.A), torch.from_numpy(arrays.B), arrays.scaling)
    delta_sigma, tol = singular_values(delta_W), default_tolerance(delta_W)
    target, sigma, errors = _target_spectrum(d, k, ex.seed, cfg.decay, cfg.target_edits)
    best = best_rank_r(torch.from_numpy(target), r)
    ranks = np.arange(1, min(d, k) + 1)
    c = param_counts(d, k, r)
    return RankArrays(
        delta_W.numpy(), _np(delta_sigma), tol, int((delta_sigma > tol).sum()),  # the bars above the line
        target, sigma, _np(best.approx), best.rel_error, ranks, errors, ranks * (d + k), c.full, c.break_even,
    )
