"""The Attention page's cached call: one attention layer on the current X, without and with LoRA."""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import pandas as pd
import streamlit as st
import torch
import torch.nn.functional as F

from lora_core import default_dtype, param_counts
from lora_core.attention import PROJECTIONS, AttentionTrace, attention_forward, make_attention_weights, merge_heads, split_heads
from lora_core.scale import MODELS

from ..config.attention import FFN_RATIO, AttentionConfig
from .device import device_choice
from .device import to_numpy as _np
from .explore import RANGE_SCAN_MAX_RANK, explore_arrays

VOCAB = MODELS["gpt2"].vocab  # the embedding row of the table uses GPT-2's vocabulary of 50,257 tokens


class ParamRow(NamedTuple):
    matrix: str
    d_in: int
    d_out: int
    adapted: bool
    frozen: int     # numbers of the pre-trained matrix, kept as they are
    trainable: int  # r·(d_in + d_out) with LoRA on it, else 0


class AttentionArrays(NamedTuple):
    X: np.ndarray                  # n×d, the Explore page's X
    W: dict[str, np.ndarray]       # "q", "k", "v", "o" → the frozen projection
    delta: dict[str, np.ndarray]   # the adapted projections → s·A·B
    plain: AttentionTrace          # without LoRA (numpy arrays)
    adapted: AttentionTrace        # with LoRA on cfg.projections
    sdpa_error: float              # max |ours − torch's scaled_dot_product_attention| over both runs
    rows: tuple[ParamRow, ...]
    scaling: float
    d_head: int


def _sdpa_error(X: torch.Tensor, W: dict, lora: dict, scaling: float, heads: int, causal: bool,
                trace: AttentionTrace) -> float:
    # an independent path: merge W + s·A·B first, then let torch's fused kernel do the attention
    eff = {p: W[p] + (scaling * lora[p][0] @ lora[p][1] if p in lora else 0) for p in PROJECTIONS}
    to4 = lambda M: split_heads(M, heads).unsqueeze(0)
    ctx = merge_heads(F.scaled_dot_product_attention(to4(X @ eff["q"]), to4(X @ eff["k"]), to4(X @ eff["v"]),
                                                     is_causal=causal).squeeze(0))
    return max(float((ctx - trace.context).abs().max()), float((ctx @ eff["o"] - trace.out).abs().max()))


def _param_rows(cfg: AttentionConfig) -> tuple[ParamRow, ...]:
    d, width, r = cfg.example.d, cfg.heads * cfg.example.k, cfg.example.r
    layout = [("W_Q", "q", d, width), ("W_K", "k", d, width), ("W_V", "v", d, width), ("W_O", "o", width, d),
              ("FFN W_1", "ffn", d, FFN_RATIO * d), ("FFN W_2", "ffn", FFN_RATIO * d, d),
              ("Token embedding", None, VOCAB, d)]
    rows = []
    for name, target, d_in, d_out in layout:
        c = param_counts(d_in, d_out, r)
        adapted = target in cfg.lora
        rows.append(ParamRow(name, d_in, d_out, adapted, c.full, c.lora if adapted else 0))
    return tuple(rows)


@st.cache_data(max_entries=64, max_size="256MB", show_spinner=False)
def attention_arrays(cfg: AttentionConfig) -> AttentionArrays:
    ex, k = explore_arrays(cfg.example), cfg.example.k
    device = device_choice().device
    dtype = default_dtype(device)
    weights = make_attention_weights(cfg.example.d, cfg.example.seed, r=cfg.example.r, heads=cfg.heads, d_head=k,
                                     preset="seed" if cfg.example.preset == "seed" else "random")
    W = dict(zip(PROJECTIONS, (w.clone() for w in weights[:4])))
    lora = {p: (A.clone(), B.clone()) for p, (A, B) in weights.lora.items()}
    # head 1 carries the Explore page's W_Q, A_Q and B_Q (edits included), so its Q is that page's Q
    W["q"][:, :k] = torch.from_numpy(ex.W)
    lora["q"][0][:] = torch.from_numpy(ex.A)
    lora["q"][1][:, :k] = torch.from_numpy(ex.B)
    if cfg.example.preset in ("peft", "gaussian"):
        for p in PROJECTIONS:  # PEFT's inits start every B at zero: the adapters change nothing yet
            lora[p][1].zero_()
    to = lambda t: t.to(device=device, dtype=dtype)
    X = to(torch.from_numpy(ex.X))
    W = {p: to(w) for p, w in W.items()}
    lora = {p: (to(A), to(B)) for p, (A, B) in lora.items() if p in cfg.projections}
    s = cfg.example.scaling
    plain = attention_forward(X, *W.values(), heads=cfg.heads, causal=cfg.causal)
    adapted = attention_forward(X, *W.values(), heads=cfg.heads, lora=lora, scaling=s, causal=cfg.causal)
    error = max(_sdpa_error(X, W, {}, s, cfg.heads, cfg.causal, plain),
                _sdpa_error(X, W, lora, s, cfg.heads, cfg.causal, adapted))
    return AttentionArrays(
        ex.X, {p: _np(w) for p, w in W.items()}, {p: _np(s * A @ B) for p, (A, B) in lora.items()},
        AttentionTrace(*(_np(t) for t in plain)), AttentionTrace(*(_np(t) for t in adapted)),
        error, _param_rows(cfg), s, k,
    )


def head_columns(M: np.ndarray, head: int, d_head: int) -> np.ndarray:
    """Head ``head``'s (0-based) own columns of Q, K, V or the context."""
    return M[:, head * d_head:(head + 1) * d_head]


def param_table(rows: tuple[ParamRow, ...]) -> pd.DataFrame:
    """The rows with a total over the layer; the embedding is listed but belongs to no layer."""
    def status(row: ParamRow) -> str:
        if row.adapted:
            return "✓ adapter A·B, trained"
        return "frozen, never adapted" if row.matrix == "Token embedding" else "frozen"

    frame = pd.DataFrame([{"matrix": row.matrix, "shape": f"{row.d_in:,} × {row.d_out:,}", "under LoRA": status(row),
                           "numbers in the matrix": row.frozen, "trained by LoRA": row.trainable} for row in rows])
    layer = [row for row in rows if row.matrix != "Token embedding"]
    total = {"matrix": "the layer, in all", "shape": "", "under LoRA": f"{sum(r.adapted for r in layer)} adapted",
             "numbers in the matrix": sum(r.frozen for r in layer), "trained by LoRA": sum(r.trainable for r in layer)}
    return pd.concat([frame, pd.DataFrame([total])], ignore_index=True)


class AttentionRanges(NamedTuple):
    qkv: tuple[float, ...]  # per head: Q, K and V of that head share it
    out: float              # the output without LoRA, with LoRA, and their difference


def _ranges(res: AttentionArrays, heads: int) -> AttentionRanges:
    biggest = lambda *ms: max(float(np.abs(m).max()) for m in ms) or 1.0
    tr, dk = res.adapted, res.d_head
    return AttentionRanges(tuple(biggest(*(head_columns(M, h, dk) for M in (tr.q, tr.k, tr.v))) for h in range(heads)),
                           biggest(res.plain.out, tr.out, tr.out - res.plain.out))


@st.cache_data(max_entries=64, show_spinner=False)
def _ranges_over_r(cfg: AttentionConfig) -> AttentionRanges:
    per_r = [_ranges(attention_arrays(dataclasses.replace(cfg, example=dataclasses.replace(cfg.example, r=r))), cfg.heads)
             for r in range(1, min(cfg.example.d, cfg.example.k) + 1)]
    return AttentionRanges(tuple(max(z) for z in zip(*(p.qkv for p in per_r))), max(p.out for p in per_r))


def attention_ranges(cfg: AttentionConfig, res: AttentionArrays) -> AttentionRanges:
    """Shared colour ranges that hold for every r the slider offers (see ``colour_ranges`` on Explore).

    What does not depend on r (K without an adapter, the output without LoRA) then stays as it is
    when r moves, and is not redrawn.
    """
    if min(cfg.example.d, cfg.example.k) <= RANGE_SCAN_MAX_RANK:
        return _ranges_over_r(dataclasses.replace(cfg, example=dataclasses.replace(cfg.example, r=1)))
    return _ranges(res, cfg.heads)
