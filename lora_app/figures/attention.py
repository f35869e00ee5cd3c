"""Figures of the Attention page: attention maps with their tokens named on the axes."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .base import matrix_heatmap


def attention_map(M: np.ndarray, title: str, *, zmax: float = 1.0, show_scale: bool = False,
                  decimals: int = 2) -> go.Figure:
    """An n×n map of scores, weights or their change: row i is the query token, column j the key token.

    Weights lie in [0, 1] and share the range 0…1, so the same red means the same share of attention.
    Masked scores (NaN) are left blank; the cells keep the size they would have with numbers in them.
    """
    M = np.asarray(M, dtype=float)
    fig = matrix_heatmap(np.nan_to_num(M), title, zmax=zmax, show_scale=show_scale, decimals=decimals)
    if np.isnan(M).any():
        fig.update_traces(z=M, selector=dict(type="heatmap"))
    # room for the axis titles, so the cells keep the size of the other heatmaps
    fig.update_layout(xaxis=dict(title=dict(text="key token j (attended to)")),
                      yaxis=dict(title=dict(text="query token i")),
                      margin=dict(l=64, b=60), height=fig.layout.height + 36)
    return fig
