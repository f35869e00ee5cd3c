"""Cached calls into the core. Keys are frozen configs, never tensors; results are numpy arrays for display."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
import streamlit as st
import torch

from lora_core import (
    ParamCounts, build_example, default_dtype, delta_weight, describe_device, lora_forward, merge,
    param_counts, pick_device,
)

from ..config import ExploreConfig


class DeviceChoice(NamedTuple):
    device: torch.device
    label: str
    problem: str | None  # why the requested device was not used, if it was not


@st.cache_resource(max_entries=1, show_spinner=False)
def device_choice() -> DeviceChoice:
    # cache_resource is shared by all sessions: this tuple is immutable, so that is safe
    try:
        device = pick_device()
        return DeviceChoice(device, describe_device(device), None)
    except ValueError as err:
        return DeviceChoice(torch.device("cpu"), "CPU", str(err))


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


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


@st.cache_data(max_entries=128, max_size="256MB", show_spinner=False)
def explore_arrays(cfg: ExploreConfig) -> ExploreArrays:
    device = device_choice().device
    ex = build_example(cfg.preset, cfg.seed, cfg.n, cfg.d, cfg.k, cfg.r, cfg.edits,
                       dtype=default_dtype(device), device=device)
    s = cfg.scaling
    fwd = lora_forward(ex.X, ex.W, ex.A, ex.B, scaling=s)
    return ExploreArrays(
        *(_np(t) for t in ex), _np(delta_weight(ex.A, ex.B, s)), _np(merge(ex.W, ex.A, ex.B, s)),
        _np(fwd.base), _np(fwd.q), _np(fwd.delta), s, param_counts(cfg.d, cfg.k, cfg.r),
    )
