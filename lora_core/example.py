"""Example matrices of any size that keep their values when a dimension or the rank grows.

Every row of every matrix is drawn from its own generator, seeded by (seed, matrix, row), over a
fixed maximal width. So the value at (i, j) never depends on the current n, d, k or r: growing a
dimension only adds rows and columns, and the seed's numbers stay where the blog put them.
"""
from __future__ import annotations

import math
import zlib
from collections.abc import Iterable

import torch

from .lora import SEED_A, SEED_B, SEED_W, SEED_X, Example

PRESETS = ("seed", "random", "peft", "gaussian")
MAX_N = 64      # rows of X (tokens)
MAX_DIM = 1024  # d, k, and so r

_SEED_VALUES = {"X": SEED_X, "W": SEED_W, "A": SEED_A, "B": SEED_B}


def _row(seed: int, name: str, i: int, kind: str) -> torch.Tensor:
    g = torch.Generator().manual_seed(zlib.crc32(f"{seed}:{name}:{i}:{kind}".encode()))
    if kind == "tenths":   # 0.0 … 0.7 in steps of 0.1, like the seed's own numbers
        return torch.randint(0, 8, (MAX_DIM,), generator=g, dtype=torch.int64).double() / 10
    if kind == "signed":   # −0.9 … 0.9 in steps of 0.1
        return torch.randint(-9, 10, (MAX_DIM,), generator=g, dtype=torch.int64).double() / 10
    if kind == "uniform":  # U(−1, 1)
        return torch.rand(MAX_DIM, generator=g, dtype=torch.float64) * 2 - 1
    if kind == "normal":   # N(0, 1)
        return torch.randn(MAX_DIM, generator=g, dtype=torch.float64)
    raise ValueError(kind)


def _fill(seed: int, name: str, rows: int, cols: int, kind: str) -> torch.Tensor:
    return torch.stack([_row(seed, name, i, kind)[:cols] for i in range(rows)])


def _with_seed_values(M: torch.Tensor, name: str) -> torch.Tensor:
    known = torch.tensor(_SEED_VALUES[name], dtype=M.dtype)
    h, w = min(M.shape[0], known.shape[0]), min(M.shape[1], known.shape[1])
    M[:h, :w] = known[:h, :w]
    return M


def check_dims(n: int, d: int, k: int, r: int) -> None:
    for name, v, hi in (("n", n, MAX_N), ("d", d, MAX_DIM), ("k", k, MAX_DIM)):
        if not 1 <= v <= hi:
            raise ValueError(f"{name} = {v} is outside 1…{hi}")
    if not 1 <= r <= min(d, k):
        raise ValueError(f"rank r = {r} is outside 1…min(d, k) = {min(d, k)}")


def build_example(preset: str, seed: int, n: int, d: int, k: int, r: int,
                  overrides: Iterable[tuple[str, int, int, float]] = (),
                  dtype: torch.dtype = torch.float64,
                  device: torch.device | str = "cpu") -> Example:
    """X (n×d), W (d×k), A (d×r), B (r×k) for a preset; ``overrides`` are edited cells (name, i, j, value).

    - ``seed``: the blog's numbers in the top-left corner, new cells in the same style (0.0…0.7).
    - ``random``: every cell drawn from −0.9…0.9.
    - ``peft``: the seed's X and W; PEFT's default adapter, A ~ U(−1/√d, 1/√d) and B = 0.
    - ``gaussian``: the seed's X and W; A ~ N(0, (1/r)²) and B = 0.
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    check_dims(n, d, k, r)
    shapes = {"X": (n, d), "W": (d, k), "A": (d, r), "B": (r, k)}
    if preset == "random":
        mats = {m: _fill(seed, m, *shapes[m], "signed") for m in shapes}
    else:
        mats = {m: _with_seed_values(_fill(seed, m, *shapes[m], "tenths"), m) for m in shapes}
    if preset == "peft":
        mats["A"] = _fill(seed, "A", d, r, "uniform") / math.sqrt(d)
        mats["B"] = torch.zeros(r, k, dtype=torch.float64)
    elif preset == "gaussian":
        mats["A"] = _fill(seed, "A", d, r, "normal") / r
        mats["B"] = torch.zeros(r, k, dtype=torch.float64)
    for name, i, j, value in overrides:
        M = mats[name]
        if i < M.shape[0] and j < M.shape[1]:
            M[i, j] = value
    return Example(*(mats[m].to(device=device, dtype=dtype) for m in ("X", "W", "A", "B")))
