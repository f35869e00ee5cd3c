"""One self-attention layer on X (n×d_model), with LoRA on any of its q, k, v, o projections.

Shapes, in the seed's row convention (X·W): W_Q and W_K are d_model×(h·d_head), W_V is
d_model×(h·d_v) and W_O is (h·d_v)×d_out (usually d_out = d_model). The projections need not be
square: the seed's W_Q is 5×3, so its preset is d_model = 5 with one head of d_head = 3, and W_O
is then 3×5. A LoRA pair (A, B) on a projection W (d_in×d_o) has A d_in×r and B r×d_o.
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping
from typing import NamedTuple

import torch

from .checks import positive_int
from .lora import SEED_A, SEED_B, SEED_W, lora_forward
from .scale import check_targets

PROJECTIONS = ("q", "k", "v", "o")
WEIGHT_PRESETS = ("seed", "random")
_MAX_WIDTH = 1024  # every generated row is drawn this wide, so growing a dimension keeps old values

LoraPairs = Mapping[str, tuple[torch.Tensor, torch.Tensor]]


class AttentionTrace(NamedTuple):
    q: torch.Tensor        # n×(h·d_head)  X·W_Q (+ LoRA)
    k: torch.Tensor        # n×(h·d_head)  X·W_K (+ LoRA)
    v: torch.Tensor        # n×(h·d_v)     X·W_V (+ LoRA)
    scores: torch.Tensor   # h×n×n         Q_h·K_hᵀ/√d_head per head
    weights: torch.Tensor  # h×n×n         softmax of scores along each row
    context: torch.Tensor  # n×(h·d_v)     weights_h·V_h, heads concatenated
    out: torch.Tensor      # n×d_out       context·W_O (+ LoRA)


class AttentionWeights(NamedTuple):
    W_Q: torch.Tensor
    W_K: torch.Tensor
    W_V: torch.Tensor
    W_O: torch.Tensor
    lora: dict[str, tuple[torch.Tensor, torch.Tensor]]  # "q", "k", "v", "o" → (A, B)


class ParamRow(NamedTuple):
    matrix: str
    shape: tuple[int, int]
    frozen: int     # numbers in the pre-trained matrix (kept, never trained under LoRA)
    trainable: int  # r·(d_in + d_out) if LoRA adapts it, else 0


# --- forward ----------------------------------------------------------------------------

def split_heads(M: torch.Tensor, heads: int) -> torch.Tensor:
    """(…, n, h·w) → (…, h, n, w): head i owns columns i·w … (i+1)·w − 1; leading batch dims are kept."""
    *lead, n, width = M.shape
    return M.reshape(*lead, n, heads, width // heads).transpose(-3, -2)


def merge_heads(M: torch.Tensor) -> torch.Tensor:
    """(…, h, n, w) → (…, n, h·w), the inverse of :func:`split_heads`."""
    *lead, h, n, w = M.shape
    return M.transpose(-3, -2).reshape(*lead, n, h * w)


class Attended(NamedTuple):
    scores: torch.Tensor   # (…, h, n, n)  Q_h·K_hᵀ/√d_head
    weights: torch.Tensor  # (…, h, n, n)  softmax along each row
    context: torch.Tensor  # (…, n, h·d_v) weights_h·V_h, heads concatenated


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, heads: int, causal: bool = False) -> Attended:
    """The attention maths after the projections, for one sequence (n×width) or a batch (…×n×width).

    The Attention page's layer (:func:`attention_forward`) and the real transformer
    (:mod:`lora_core.tiny`) both call this, so the app has one implementation of attention.
    """
    d_head = q.shape[-1] // heads
    # dividing by √d_head keeps the scores' spread independent of the head width
    scores = split_heads(q, heads) @ split_heads(k, heads).transpose(-1, -2) / math.sqrt(d_head)
    if causal:
        n = q.shape[-2]
        hidden = torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(hidden, float("-inf"))
    weights = torch.softmax(scores, dim=-1)
    return Attended(scores, weights, merge_heads(weights @ split_heads(v, heads)))


def _check_attention_shapes(X: torch.Tensor, W_Q: torch.Tensor, W_K: torch.Tensor, W_V: torch.Tensor,
                            W_O: torch.Tensor, heads: int) -> int:
    heads = positive_int("heads", heads)
    for name, W in (("X", X), ("W_Q", W_Q), ("W_K", W_K), ("W_V", W_V), ("W_O", W_O)):
        if W.dim() != 2:
            raise ValueError(f"{name} must be a matrix, got shape {tuple(W.shape)}")
    d_model = X.shape[1]
    for name, W in (("W_Q", W_Q), ("W_K", W_K), ("W_V", W_V)):
        if W.shape[0] != d_model:
            raise ValueError(f"X is n×{d_model} but {name} has {W.shape[0]} rows")
        if W.shape[1] % heads:
            raise ValueError(f"{name} has {W.shape[1]} columns, not divisible by {heads} heads")
    if W_Q.shape[1] != W_K.shape[1]:
        raise ValueError(f"W_Q ({W_Q.shape[1]} columns) and W_K ({W_K.shape[1]}) must match for Q·Kᵀ")
    if W_O.shape[0] != W_V.shape[1]:
        raise ValueError(f"W_O has {W_O.shape[0]} rows but the context has {W_V.shape[1]} columns")
    return heads


def _project(M: torch.Tensor, W: torch.Tensor, pair: tuple[torch.Tensor, torch.Tensor] | None,
             scaling: float) -> torch.Tensor:
    if pair is None:
        return M @ W
    A, B = pair
    return lora_forward(M, W, A, B, scaling).q  # M·W + s·(M·A)·B


def attention_forward(X: torch.Tensor, W_Q: torch.Tensor, W_K: torch.Tensor, W_V: torch.Tensor,
                      W_O: torch.Tensor, *, heads: int = 1, lora: LoraPairs | None = None,
                      scaling: float = 1.0, causal: bool = False) -> AttentionTrace:
    """Multi-head attention, returning every intermediate; ``lora`` maps "q"/"k"/"v"/"o" to (A, B).

    softmax(Q_h·K_hᵀ/√d_head)·V_h per head, heads concatenated, then ·W_O. ``causal`` hides
    later tokens (GPT-style): row i attends to tokens 0…i only.
    """
    heads = _check_attention_shapes(X, W_Q, W_K, W_V, W_O, heads)
    lora = dict(lora or {})
    unknown = sorted(set(lora) - set(PROJECTIONS))
    if unknown:
        raise ValueError(f"unknown LoRA projection(s) {unknown}; choose from {', '.join(PROJECTIONS)}")
    q = _project(X, W_Q, lora.get("q"), scaling)
    k = _project(X, W_K, lora.get("k"), scaling)
    v = _project(X, W_V, lora.get("v"), scaling)
    scores, weights, context = attend(q, k, v, heads, causal)
    out = _project(context, W_O, lora.get("o"), scaling)
    return AttentionTrace(q, k, v, scores, weights, context, out)


# --- parameter table --------------------------------------------------------------------

def lora_param_table(d_model: int, d_ff: int, r: int, targets: Iterable[str], vocab: int) -> list[ParamRow]:
    """Frozen and trainable numbers per matrix of one transformer layer, plus the embedding.

    Rows: W_Q, W_K, W_V, W_O (d×d), FFN W_1 (d×d_ff) and W_2 (d_ff×d) — both adapted by the "ffn"
    target — and the token embedding (vocab×d), which LoRA never trains here.
    """
    d, f, r, vocab = (positive_int(n, v) for n, v in (("d_model", d_model), ("d_ff", d_ff),
                                                       ("rank r", r), ("vocab", vocab)))
    chosen = check_targets(targets)
    layout = [("W_Q", "q", d, d), ("W_K", "k", d, d), ("W_V", "v", d, d), ("W_O", "o", d, d),
              ("FFN W_1", "ffn", d, f), ("FFN W_2", "ffn", f, d), ("Embedding", None, vocab, d)]
    return [ParamRow(name, (rows, cols), rows * cols, r * (rows + cols) if target in chosen else 0)
            for name, target, rows, cols in layout]


# --- deterministic example weights ------------------------------------------------------

def _grid(seed: int, name: str, rows: int, cols: int, preset: str) -> torch.Tensor:
    # one generator per (seed, matrix, row) over a fixed width: cell (i, j) never depends on the size
    out = []
    for i in range(rows):
        g = torch.Generator().manual_seed(zlib.crc32(f"attn:{seed}:{name}:{i}:{preset}".encode()))
        if preset == "seed":  # 0.0 … 0.7 in tenths, the seed's style
            row = torch.randint(0, 8, (_MAX_WIDTH,), generator=g, dtype=torch.int64).double() / 10
        else:                 # −0.9 … 0.9 in tenths
            row = torch.randint(-9, 10, (_MAX_WIDTH,), generator=g, dtype=torch.int64).double() / 10
        out.append(row[:cols])
    return torch.stack(out) if out else torch.zeros(0, cols, dtype=torch.float64)


def _with_corner(M: torch.Tensor, known: list[list[float]]) -> torch.Tensor:
    K = torch.tensor(known, dtype=M.dtype)
    h, w = min(M.shape[0], K.shape[0]), min(M.shape[1], K.shape[1])
    M[:h, :w] = K[:h, :w]
    return M


def make_attention_weights(d_model: int, seed: int, *, r: int = 2, heads: int = 1,
                           d_head: int | None = None, preset: str = "seed",
                           dtype: torch.dtype = torch.float64,
                           device: torch.device | str = "cpu") -> AttentionWeights:
    """Deterministic W_Q, W_K, W_V (d_model×h·d_head), W_O (h·d_head×d_model) and LoRA pairs at rank r.

    ``d_head`` defaults to 3 for the "seed" preset (the seed's W_Q is 5×3) and to d_model/heads
    otherwise. With "seed", W_Q, A_Q and B_Q carry the seed's numbers in their top-left corners,
    so d_model = 5, one head, r = 2 reproduces the blog's W_Q, A_Q and B_Q exactly.
    """
    if preset not in WEIGHT_PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(WEIGHT_PRESETS)}")
    d_model, r, heads = (positive_int(n, v) for n, v in (("d_model", d_model), ("rank r", r),
                                                         ("heads", heads)))
    if d_head is None:
        d_head = 3 if preset == "seed" else max(1, d_model // heads)
    d_head = positive_int("d_head", d_head)
    width = heads * d_head
    if max(d_model, width) > _MAX_WIDTH:
        raise ValueError(f"d_model and heads·d_head must be at most {_MAX_WIDTH}")
    shapes = {"Q": (d_model, width), "K": (d_model, width), "V": (d_model, width), "O": (width, d_model)}
    if r > min(min(s) for s in shapes.values()):
        raise ValueError(f"rank r = {r} exceeds the smallest projection side {min(d_model, width)}")
    mats = {f"W_{m}": _grid(seed, f"W_{m}", *shape, preset) for m, shape in shapes.items()}
    lora = {m.lower(): (_grid(seed, f"A_{m}", d_in, r, preset), _grid(seed, f"B_{m}", r, d_out, preset))
            for m, (d_in, d_out) in shapes.items()}
    if preset == "seed":
        _with_corner(mats["W_Q"], SEED_W)
        _with_corner(lora["q"][0], SEED_A)
        _with_corner(lora["q"][1], SEED_B)
    to = lambda t: t.to(device=device, dtype=dtype)
    return AttentionWeights(*(to(mats[f"W_{m}"]) for m in "QKVO"),
                            lora={p: (to(A), to(B)) for p, (A, B) in lora.items()})
