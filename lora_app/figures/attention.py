"""Figures of the Attention page: attention maps with their tokens named on the axes."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .heatmap import matrix_heatmap

# the longest that fits its side is shown
AXIS_TITLES = (("key token j (attended to)", "key token j", "key j"), ("query token i", "query i", "i"))


def attention_map(M: np.ndarray, title: str, *, zmax: float = 1.0, show_scale: bool = False,
                  decimals: int = 2, cell_px: int | None = None, scale: float = 1.0) -> go.Figure:
    """An n×n map of scores, weights or their change: row i is the query token, column j the key token.

    Weights lie in [0, 1] and share the range 0…1, so the same red means the same share of attention.
    Masked scores (NaN) are left blank.
    """
    M, title, kw = attention_item(M, title, zmax=zmax, show_scale=show_scale, decimals=decimals)
    return matrix_heatmap(M, title, cell_px=cell_px, scale=scale, **kw)


def attention_item(M: np.ndarray, title: str, *, zmax: float = 1.0, show_scale: bool = False,
                   decimals: int | None = 2) -> tuple[np.ndarray, str, dict]:
    """An attention map as a (matrix, title, kwargs) item of a figure row (``charts.matrix_row``)."""
    return (np.asarray(M, dtype=float), title,
            {"zmax": zmax, "show_scale": show_scale, "decimals": decimals, "axis_titles": AXIS_TITLES})
