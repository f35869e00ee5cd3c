"""The Rank page's cached calls: the spectrum of ΔW = s·A·B, a target ΔW* against its best rank-r copy, the counts.

Each part of the page asks only for what it shows: the spectrum of ΔW (one SVD of ΔW), ΔW* and
its best rank-r copy (ΔW*'s singular values and one SVD of ΔW*, both cached apart from r, so moving
r only multiplies the first r singular triplets back together), or the counts (no SVD at all).
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import streamlit as st
import torch

from lora_core import delta_weight, param_counts
from lora_core.rank import best_rank_r_from_svd, rank_error_curve, seeded_full_rank_update, spectrum

from ..config.explore import ExploreConfig
from ..config.rank import RankConfig
from .device import to_numpy as _np
from .explore import RANGE_SCAN_MAX_RANK, explore_arrays


class DeltaSpectrum(NamedTuple):
    delta_W: np.ndarray        # s·A·B of the example, d×k
    delta_sigma: np.ndarray    # its singular values, descending
    delta_tol: float           # below this a singular value is rounding noise
    delta_rank: int            # how many are above it


class TargetCopy(NamedTuple):
    target: np.ndarray         # ΔW*, d×k
    target_sigma: np.ndarray
    approx: np.ndarray         # its best rank-r approximation (truncated SVD)
    rel_error: float           # ‖ΔW* − approx‖_F / ‖ΔW*‖_F
    ranks: np.ndarray          # 1 … min(d, k)
    rank_errors: np.ndarray    # the best relative error at each of those ranks
    z_copy: float              # one colour range for ΔW*, its copy and the rest, the same for every r (if small)


class RankCounts(NamedTuple):
    ranks: np.ndarray          # 1 … min(d, k)
    lora_counts: np.ndarray    # r·(d + k) at each of those ranks
    full_count: int            # d·k
    break_even: float          # d·k/(d + k)


@st.cache_data(max_entries=32, show_spinner=False)
def seeded_target(d: int, k: int, seed: int, decay: float) -> np.ndarray:
    """ΔW* before any edits: full rank min(d, k), σᵢ = i^−decay."""
    return _np(seeded_full_rank_update(d, k, seed, decay=decay))


def edited_target(d: int, k: int, seed: int, decay: float, edits) -> np.ndarray:
    """ΔW* as its table shows it: the seeded target with the session's edits."""
    return _edited_target(d, k, seed, decay, edits).numpy()


def _edited_target(d: int, k: int, seed: int, decay: float, edits) -> torch.Tensor:
    target = torch.from_numpy(seeded_target(d, k, seed, decay).copy())
    for i, j, value in edits:
        target[i, j] = value
    return target


@st.cache_data(max_entries=8, show_spinner=False)
def _target_svd(d: int, k: int, seed: int, decay: float,
                edits: tuple[tuple[int, int, float], ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ΔW*'s SVD (U, σ, Vᵀ), once for every r: each r's best copy is the sum of its first r triplets."""
    U, S, Vh = torch.linalg.svd(_edited_target(d, k, seed, decay, edits), full_matrices=False)
    return U.numpy(), S.numpy(), Vh.numpy()


@st.cache_data(max_entries=32, show_spinner=False)
def _target_spectrum(d: int, k: int, seed: int, decay: float,
                     edits: tuple[tuple[int, int, float], ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray, float | None]:
    """ΔW* with its edits, its singular values, its best error at every rank, and a colour range
    for ΔW*, its best rank-r copy and the difference that holds for every r (None when min(d, k) is
    too large to scan): none of it depends on r, so moving r leaves ΔW*'s heatmap as it is."""
    target = _edited_target(d, k, seed, decay, edits)
    curve = rank_error_curve(target)
    z = None
    if min(d, k) <= RANGE_SCAN_MAX_RANK:
        U, S, Vh = (torch.from_numpy(a) for a in _target_svd(d, k, seed, decay, edits))
        approx, z = torch.zeros_like(target), float(target.abs().max())
        for i in range(S.numel()):  # the best rank-r copy is the sum of the first r singular triplets
            approx += S[i] * torch.outer(U[:, i], Vh[i])
            z = max(z, float(approx.abs().max()), float((target - approx).abs().max()))
    return target.numpy(), _np(curve.sigma), _np(curve.rel_error), z


@st.cache_data(max_entries=32, max_size="256MB", show_spinner=False)
def delta_spectrum(ex: ExploreConfig) -> DeltaSpectrum:
    """The example's ΔW = s·A·B and its singular values: one SVD, in float64 on the CPU (σ at 1e-17 must show)."""
    arrays = explore_arrays(ex)
    delta_W = delta_weight(torch.from_numpy(arrays.A), torch.from_numpy(arrays.B), arrays.scaling)
    sigma, tol = spectrum(delta_W)
    return DeltaSpectrum(delta_W.numpy(), _np(sigma), tol, int((sigma > tol).sum()))  # the bars above the line


@st.cache_data(max_entries=64, max_size="256MB", show_spinner=False)
def target_copy(cfg: RankConfig) -> TargetCopy:
    """ΔW*, its singular values and errors (cached apart from r) and its best rank-r copy."""
    ex, d, k, r = cfg.example, cfg.example.d, cfg.example.k, cfg.example.r
    key = (d, k, ex.seed, cfg.decay, cfg.target_edits)
    target, sigma, errors, z_all = _target_spectrum(*key)
    best = best_rank_r_from_svd(torch.from_numpy(target), *(torch.from_numpy(a) for a in _target_svd(*key)), r)
    approx = _np(best.approx)
    z_copy = z_all or max(float(np.abs(m).max()) for m in (target, approx, target - approx)) or 1.0
    return TargetCopy(target, sigma, approx, best.rel_error, np.arange(1, min(d, k) + 1), errors, z_copy)


def rank_counts(d: int, k: int, r: int) -> RankCounts:
    ranks = np.arange(1, min(d, k) + 1)
    c = param_counts(d, k, r)
    return RankCounts(ranks, ranks * (d + k), c.full, c.break_even)
