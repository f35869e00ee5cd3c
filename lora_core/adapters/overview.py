"""An adapter at a glance: each module's spectrum read one module at a time, placed on a layers × types grid.

A module's path names its layer by its last number and its type by what follows it:
``model.layers.12.self_attn.q_proj`` is layer 12, type ``self_attn.q_proj``; GPT-2's ``transformer.h.0.attn.c_attn``
is layer 0, type ``attn.c_attn``. A path without a number is its own type, in no layer.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

import torch

from .similarity import delta_cosine, similarity_grid
from .spectrum import delta_singular_values as _sigma
from .spectrum import effective_rank, energy_share, stable_rank

_LAYER = re.compile(r"^(?P<head>.*?)\.?(?P<layer>\d+)\.(?P<kind>[^\d]+(?:\.[^\d][^.]*)*)$")


class ModuleSummary(NamedTuple):
    name: str
    layer: int | None
    kind: str
    d_in: int
    d_out: int
    r: int
    scaling: float
    sigma: tuple[float, ...]     # the r singular values of ΔW = s·A·B, largest first
    frobenius: float
    effective_rank: float
    stable_rank: float

    def energy(self, k: int) -> float:
        return energy_share(torch.tensor(self.sigma, dtype=torch.float64), k)


def layer_and_kind(name: str) -> tuple[int | None, str]:
    m = _LAYER.match(name)
    if not m:
        return None, name
    return int(m["layer"]), m["kind"]


def summarize(modules: Iterable) -> list[ModuleSummary]:
    """Each module's spectrum, in the order given (``AdapterFile.modules()``: the factors are dropped as read)."""
    out = []
    for mod in modules:
        info = mod.info
        sigma = _sigma(mod.A, mod.B, info.scaling)
        layer, kind = layer_and_kind(info.name)
        out.append(ModuleSummary(info.name, layer, kind, info.d_in, info.d_out, info.r, info.scaling,
                                 tuple(sigma.tolist()), float(sigma.square().sum().sqrt()), effective_rank(sigma),
                                 stable_rank(sigma)))
    return out


class Grid(NamedTuple):
    layers: list[str]        # "layer 0", …, then "no layer" when some module has none
    kinds: list[str]         # module types in order of first appearance
    values: list[list[float | None]]   # layers × kinds (None: no such module)
    names: list[list[str | None]]      # the module at each cell


def grid(items: list, metric) -> Grid:
    """``metric(item)`` on a layers × types grid, for items with a module ``name`` (summaries, comparisons)."""
    where = [layer_and_kind(s.name) for s in items]
    kinds = list(dict.fromkeys(kind for _, kind in where))
    layer_ids = sorted({layer for layer, _ in where if layer is not None})
    rows = [*layer_ids, *([None] if any(layer is None for layer, _ in where) else [])]
    values = [[None] * len(kinds) for _ in rows]
    names = [[None] * len(kinds) for _ in rows]
    for s, (layer, kind) in zip(items, where):
        i, j = rows.index(layer), kinds.index(kind)
        values[i][j], names[i][j] = metric(s), s.name
    return Grid([f"layer {r}" if r is not None else "no layer" for r in rows], kinds, values, names)


class Comparison(NamedTuple):
    name: str
    r1: int
    r2: int
    phi: torch.Tensor      # r1×r2: φ(A₁, A₂, i, j)
    cosine: float          # of the two ΔW


def compare_modules(first: Iterable, second: Iterable) -> list[Comparison]:
    """For each module the two adapters share (in the first's order): φ's grid and the cosine of the updates.

    The first adapter's factors are held (the second is read one module at a time)."""
    held = {m.info.name: m for m in first}
    out = []
    for m2 in second:
        m1 = held.get(m2.info.name)
        if m1 is None or m1.A.shape[0] != m2.A.shape[0] or m1.B.shape[1] != m2.B.shape[1]:
            continue
        out.append(Comparison(m2.info.name, m1.info.r, m2.info.r, similarity_grid(m1.A, m2.A),
                              delta_cosine(m1.A, m1.B, m1.info.scaling, m2.A, m2.B, m2.info.scaling)))
    order = {n: i for i, n in enumerate(held)}
    return sorted(out, key=lambda c: order[c.name])
