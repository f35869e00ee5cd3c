"""The Explore page's cached calls into the core. Keys are frozen configs, never tensors; results are numpy arrays."""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import streamlit as st

from lora_core import ParamCounts, build_example, default_dtype, delta_weight, lora_forward, merge, param_counts

from ..config import ExploreConfig
from .device import device_choice, to_numpy


class ExploreArrays(NamedTuple):
    X: np.ndarray
    W: np.ndarray
    A: np.ndarray
    B: np.ndarray
    delta_W: np.ndarray   # s·A·B
    W_merged: np.ndarray  # W + s·A·B
    base: np.ndarray      # Q without LoRA, X·W
    q: np.ndarray         # Q with LoRA
    delta_q: np.ndarray   # q − base = s·X·A·B
    scaling: float
    counts: ParamCounts


@st.cache_data(max_entries=128, max_size="256MB", show_spinner=False)
def explore_arrays(cfg: ExploreConfig) -> ExploreArrays:
    device = device_choice().device
    ex = build_example(cfg.preset, cfg.seed, cfg.n, cfg.d, cfg.k, cfg.r, cfg.edits,
                       dtype=default_dtype(device), device=device)
    s = cfg.scaling
    fwd = lora_forward(ex.X, ex.W, ex.A, ex.B, scaling=s)
    return ExploreArrays(
        *(to_numpy(t) for t in ex), to_numpy(delta_weight(ex.A, ex.B, s)), to_numpy(merge(ex.W, ex.A, ex.B, s)),
        to_numpy(fwd.base), to_numpy(fwd.q), to_numpy(fwd.delta), s, param_counts(cfg.d, cfg.k, cfg.r),
    )


class ColourRanges(NamedTuple):
    w: float  # W, ΔW and W + ΔW share it
    q: float  # Q, Q with LoRA and ΔQ share it


RANGE_SCAN_MAX_RANK = 32  # scanning every r costs about 80 ms at d = k = 32, once per example


@st.cache_data(max_entries=128, show_spinner=False)
def _ranges_over_r(cfg: ExploreConfig) -> ColourRanges:
    device = device_choice().device
    z_w = z_q = 0.0
    for r in range(1, min(cfg.d, cfg.k) + 1):
        c = dataclasses.replace(cfg, r=r)
        ex = build_example(c.preset, c.seed, c.n, c.d, c.k, r, c.edits, dtype=default_dtype(device), device=device)
        fwd = lora_forward(ex.X, ex.W, ex.A, ex.B, scaling=c.scaling)
        z_w = max(z_w, *(float(t.abs().max()) for t in (ex.W, delta_weight(ex.A, ex.B, c.scaling),
                                                          merge(ex.W, ex.A, ex.B, c.scaling))))
        z_q = max(z_q, *(float(t.abs().max()) for t in (fwd.base, fwd.q, fwd.delta)))
    return ColourRanges(z_w or 1.0, z_q or 1.0)


def colour_ranges(cfg: ExploreConfig, res: ExploreArrays) -> ColourRanges:
    """Shared colour ranges that hold for every rank the r slider offers.

    Moving r then changes the colour of a cell only where its number changes, and W_Q and Q without
    LoRA, whose numbers do not depend on r, are not redrawn at all. Beyond RANGE_SCAN_MAX_RANK the
    ranges are the current matrices' own (the scan would cost more than it saves).
    """
    if min(cfg.d, cfg.k) <= RANGE_SCAN_MAX_RANK:
        return _ranges_over_r(dataclasses.replace(cfg, r=1))  # one cache entry for every r
    def biggest(*arrays) -> float:
        return max(float(np.abs(a).max()) for a in arrays) or 1.0
    return ColourRanges(biggest(res.W, res.delta_W, res.W_merged), biggest(res.base, res.q, res.delta_q))
