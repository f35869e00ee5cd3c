"""The Training page's cached call: one trace, as read-only numpy arrays; scrubbing replays one step.

A run keeps only what AdamW carries on (A, B, m, v) and every step's loss. The step on screen is
recomputed from that state by ``lora_core.replay_step``, the loop's own code, in well under a
millisecond at the seed's size, so nothing n×k wide is stored for every step.

Two limits, both from the sizes: the state is kept every step while it fits in
``STORED_NUMBERS_CAP`` numbers, and otherwise only every K steps (checkpoints), a step between them
being reached by walking forward with the loop's own step; and a run's length is capped so that
training both ways takes about ``TRAIN_SECONDS`` at most (:func:`max_steps_for`).
"""
from __future__ import annotations

import math
from types import MappingProxyType
from typing import NamedTuple

import numpy as np
import streamlit as st
import torch

from lora_core import (
    STATE_FIELDS,
    adamw_trace,
    build_example,
    default_dtype,
    full_finetune_trace,
    init_gaussian,
    init_peft_default,
    lora_forward,
    lora_scaling,
    make_target,
    rank_r_floor,
    replay_step,
    state_before,
)
from lora_core.trace import checkpoint_before, replay_state

from ..config import MAX_TRAIN_STEPS, TrainingConfig
from .device import device_choice

STORED_NUMBERS_CAP = 4_000_000  # a run's stored states (checkpoints): about 32 MB of float64 per cached run
TRAIN_SECONDS = 1.0  # the longest a run (LoRA and full fine-tuning) may take on the project's 2-core machine
# what one step of each loop costs there, fitted to bench/bench_limits.py's timings (docs/PERFORMANCE.md):
# LoRA multiplies n·r·(2d + 3k) numbers a step, full fine-tuning 2·n·d·k, and each step has a fixed cost
LORA_MACS_PER_S, FULL_MACS_PER_S, STEP_OVERHEAD_S = 7e9, 1.3e10, 3e-4


def numbers_per_step(n: int, d: int, k: int, r: int) -> int:
    return 3 * r * (d + k)  # A and B, and AdamW's m and v for each


def step_seconds(n: int, d: int, k: int, r: int) -> float:
    """The estimated time of one step of both runs, LoRA's and full fine-tuning's, on the project's machine."""
    return n * r * (2 * d + 3 * k) / LORA_MACS_PER_S + 2 * n * d * k / FULL_MACS_PER_S + STEP_OVERHEAD_S


def max_steps_for(n: int, d: int, k: int, r: int) -> int:
    """The longest run the page trains at these sizes: within TRAIN_SECONDS, and at most MAX_TRAIN_STEPS."""
    return max(1, min(MAX_TRAIN_STEPS, int(TRAIN_SECONDS / step_seconds(n, d, k, r))))


def checkpoint_every(n: int, d: int, k: int, r: int, steps: int) -> int:
    """Keep the state every this many steps, so that the kept states fit STORED_NUMBERS_CAP.

    1 while every step fits; steps + 1 (nothing kept but the start and the end) when not even one does.
    """
    fit = STORED_NUMBERS_CAP // numbers_per_step(n, d, k, r)
    if fit >= steps:
        return 1
    return steps + 1 if fit == 0 else math.ceil(steps / fit)


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
    states: MappingProxyType  # STATE_FIELDS → array with the state after each step (every ``every`` steps)
    hyper: MappingProxyType   # scaling, lr, betas, eps, weight_decay: what a replay needs
    message: str | None       # divergence, if any
    full_message: str | None
    q_final: np.ndarray       # Q after the last step
    every: int = 1            # the state is kept after steps every, 2·every, …
    A_end: np.ndarray | None = None  # A and B after the last step
    B_end: np.ndarray | None = None
    config: TrainingConfig | None = None  # what the run was trained from: the replay caches' key

    @property
    def n_steps(self) -> int:
        return len(self.losses) - 1

    def before(self, t: int) -> tuple[np.ndarray, np.ndarray]:
        """A and B going into step t (1-based)."""
        if t == 1:
            return self.A0, self.B0
        if self.every == 1:
            return self.states["A"][t - 2], self.states["B"][t - 2]
        replayed = self._replayed(t)
        return replayed.A_in, replayed.B_in

    def step(self, t: int):
        """Step t (1-based) in full, a ``StepRecord`` of numpy arrays, replayed from the stored state."""
        if self.every != 1:
            return self._replayed(t).record
        # copies (torch.tensor): the cached arrays stay read-only
        rec = replay_step(torch.tensor(self.X), torch.tensor(self.W), torch.tensor(self.T),
                          state_before(self.states, self.A0, self.B0, t), t, **self.hyper)
        return rec._replace(**{f: getattr(rec, f).numpy() for f in rec._fields[2:]})

    def at(self, field: str, t: int) -> np.ndarray:
        if field in STATE_FIELDS and self.every == 1:
            return self.states[field][t - 1]
        return getattr(self.step(t), field)

    def q_after(self, t: int) -> np.ndarray:
        """Q with the adapter as it is after step t."""
        if t == self.n_steps:
            return self.q_final
        return self._replayed(t).q_after if self.every != 1 else self.at("q", t + 1)

    def _replayed(self, t: int) -> Replayed:
        return _replayed(self, self.config, t)


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
    every = checkpoint_every(ex_cfg.n, ex_cfg.d, ex_cfg.k, ex_cfg.r, cfg.steps)
    trace = adamw_trace(X, W, A, B, T, scaling=s, checkpoint_every=every, **hp)
    full = full_finetune_trace(X, W, T, **hp)
    return TrainingRun(
        _frozen(X), _frozen(W), _frozen(T), _frozen(target.delta_W_star), _frozen(A), _frozen(B), s,
        _frozen(np.array(trace.losses)), _frozen(np.array(full.losses)), trace.param_count, full.param_count,
        rank_r_floor(X, T, W, ex_cfg.r), MappingProxyType({f: _frozen(v) for f, v in trace.states.items()}),
        MappingProxyType(trace.hyper), trace.message, full.message,
        _frozen(lora_forward(X, W, trace.A.to(device, dtype), trace.B.to(device, dtype), scaling=s).q),
        every, _frozen(trace.A), _frozen(trace.B), cfg,
    )


class Replayed(NamedTuple):
    """One step of a checkpointed run, replayed: what the page shows of step t, all of it read-only."""
    A_in: np.ndarray     # A and B going into step t
    B_in: np.ndarray
    record: tuple        # the StepRecord of step t, numpy arrays
    q_after: np.ndarray  # Q with A and B after step t, as step t + 1's forward pass computes it


# one entry is about 16·r·(d + k) numbers (130 MB at d = k = r = 1024): only the steps just shown are kept
@st.cache_resource(max_entries=2, ttl=600, show_spinner="Replaying the run up to this step…")
def _replayed(_run: TrainingRun, config: TrainingConfig, t: int) -> Replayed:
    """Step t of a run that kept only checkpoints: walk from the checkpoint before it with the loop's own
    step, then replay step t (``config`` is the cache key: it determines the run)."""
    X, W, T = torch.tensor(_run.X), torch.tensor(_run.W), torch.tensor(_run.T)  # copies: the cached arrays stay read-only
    c, state = checkpoint_before(_run.states, _run.A0, _run.B0, t, _run.every)
    state = replay_state(X, W, T, state, c, t - 1, **_run.hyper)
    rec = replay_step(X, W, T, state, t, **_run.hyper)
    with torch.inference_mode():  # the ops of the next step's forward pass, so the same numbers
        q_after = X @ W + _run.hyper["scaling"] * ((X @ rec.A) @ rec.B)
    return Replayed(_frozen(state["A"]), _frozen(state["B"]),
                    rec._replace(**{f: _frozen(getattr(rec, f)) for f in rec._fields[2:]}), _frozen(q_after))
