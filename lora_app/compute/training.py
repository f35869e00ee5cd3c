"""The Training page's cached call: one trace, as read-only numpy arrays; scrubbing replays one step.

A run keeps, per step, only what AdamW carries on (A, B, m, v) and the loss. The step on screen is
recomputed from that state by ``lora_core.replay_step``, the loop's own code, in well under a
millisecond at the seed's size, so nothing n×k wide is stored for every step.
"""
from __future__ import annotations

from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import streamlit as st
import torch

from lora_core import (
    STATE_FIELDS, adamw_trace, build_example, replay_step, state_before, default_dtype, full_finetune_trace, init_gaussian, init_peft_default,
    lora_forward, lora_scaling, make_target, rank_r_floor,
)

from ..config import TrainingConfig
from .explore import device_choice

STORED_NUMBERS_CAP = 4_000_000  # a trace keeps every step's state: about 32 MB of float64 per cached run


def numbers_per_step(n: int, d: int, k: int, r: int) -> int:
    return 3 * r * (d + k)  # A and B, and AdamW's m and v for each


def max_steps_for(n: int, d: int, k: int, r: int) -> int:
    return STORED_NUMBERS_CAP // numbers_per_step(n, d, k, r)


class TrainingRun(NamedTuple):
    X: np.ndarray
    W: np.ndarray
    T: np.ndarray
    delta_W_star: np.ndarray
    A0: np.ndarray
    B0: np.ndarray
    scaling: float
    losses: np.ndarray        # L before each step, then after the last: len(steps) + 1
    full_losses: np.ndarray   # the same for full fine-tuning of W
    lora_count: int
    full_count: int
    floor: float              # the best loss any rank-r update can reach
    states: MappingProxyType  # STATE_FIELDS → array with the state after each step
    hyper: MappingProxyType   # scaling, lr, betas, eps, weight_decay: what a replay needs
    message: str | None       # divergence, if any
    full_message: str | None
    q_final: np.ndarray       # Q after the last step

    @property
    def n_steps(self) -> int:
        return len(self.losses) - 1

    def before(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """A and B going into step t (1-based)."""
        return (self.A0, self.B0) if t == 1 else (self.states["A"][t - 2], self.states["B"][t - 2])

    def step(self, t: int):
        """Step t (1-based) in full, a ``StepRecord`` of numpy arrays, replayed from the stored state."""
        # copies (torch.tensor): the cached arrays stay read-only
        rec = replay_step(torch.tensor(self.X), torch.tensor(self.W), torch.tensor(self.T),
                          state_before(self.states, self.A0, self.B0, t), t, **self.hyper)
        return rec._replace(**{f: getattr(rec, f).numpy() for f in rec._fields[2:]})

    def at(self, field: str, t: int) -> np.ndarray:
        if field in STATE_FIELDS:
            return self.states[field][t - 1]
        return getattr(self.step(t), field)

    def q_after(self, t: int) -> np.ndarray:
        """Q with the adapter as it is after step t."""
        return self.q_final if t == self.n_steps else self.at("q", t + 1)


def _frozen(a) -> np.ndarray:
    arr = np.ascontiguousarray(a.detach().to("cpu", torch.float64).numpy() if torch.is_tensor(a) else a)
    arr.flags.writeable = False  # shared by every session through cache_resource: nobody may change it
    return arr


@st.cache_resource(max_entries=12, ttl=3600, show_spinner="Training…")
def training_run(cfg: TrainingConfig) -> TrainingRun:
    ex_cfg = cfg.example
    device = device_choice().device
    dtype = default_dtype(device)
    ex = build_example(ex_cfg.preset, ex_cfg.seed, ex_cfg.n, ex_cfg.d, ex_cfg.k, ex_cfg.r, ex_cfg.edits,
                       dtype=dtype, device=device)
    X, W, A, B = ex
    if cfg.init != "seed":
        init = init_peft_default if cfg.init == "peft" else init_gaussian
        A, B = init(ex_cfg.d, ex_cfg.k, ex_cfg.r, torch.Generator().manual_seed(ex_cfg.seed))
        A, B = A.to(device, dtype), B.to(device, dtype)
    target = make_target(X, W, r_star=cfg.rstar, seed=ex_cfg.seed)
    T = target.T.clone()
    for i, j, value in cfg.target_edits:
        if i < T.shape[0] and j < T.shape[1]:
            T[i, j] = value
    s = lora_scaling(ex_cfg.alpha, ex_cfg.r, ex_cfg.rslora)
    hp = dict(steps=cfg.steps, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, weight_decay=cfg.wd)
    trace = adamw_trace(X, W, A, B, T, scaling=s, **hp)
    full = full_finetune_trace(X, W, T, **hp)
    return TrainingRun(
        _frozen(X), _frozen(W), _frozen(T), _frozen(target.delta_W_star), _frozen(A), _frozen(B), s,
        _frozen(np.array(trace.losses)), _frozen(np.array(full.losses)), trace.param_count, full.param_count,
        rank_r_floor(X, T, W, ex_cfg.r), MappingProxyType({f: _frozen(v) for f, v in trace.states.items()}),
        MappingProxyType(trace.hyper), trace.message, full.message,
        _frozen(lora_forward(X, W, trace.A.to(device, dtype), trace.B.to(device, dtype), scaling=s).q),
    )
