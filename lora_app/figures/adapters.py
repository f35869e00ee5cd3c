"""Figures of the Adapters page: an adapter's modules on a layers × types grid, one module's singular values, and
the LoRA paper's subspace similarity φ as its Figure 3 draws it. Plain numbers in, ``go.Figure`` out."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .base import FONT, colours_at, fast_figure, text_colour_on
from .real import PENDING, PENDING_TEXT, SEQUENTIAL, titled
from .sizes import text_width

LORA_COLOUR = "#c2410c"
OTHER_COLOUR = "#6b7280"


def module_grid(layers: list[str], kinds: list[str], values, names, *, title: str, subtitle: str, fmt,
                zmax: float | None = None, width: float = 900, scale: float = 1.0, selected: str | None = None
                ) -> go.Figure:
    """A value per module on a layers (rows) × types (columns) grid; a cell with no module is grey and empty.

    Each cell carries its module's path (``customdata``) so that a click names the module; ``selected`` is outlined.
    """
    n_rows, n_cols = len(layers), len(kinds)
    Z = np.array([[np.nan if v is None else float(v) for v in row] for row in values], dtype=float).reshape(n_rows, n_cols)
    top = float(np.nanmax(Z)) if np.isfinite(Z).any() else 1.0
    zmax = zmax if zmax is not None else (top if top > 0 else 1.0)
    size = round(FONT["size"] * scale)
    left = int(max((text_width(t, size) for t in layers), default=0) + 16 * scale)
    cell_h = max(round(26 * scale), min(round(44 * scale), round(560 * scale / max(n_rows, 1))))
    top_px, bottom = round(84 * scale), round(size * 1.6 + 24 + max((len(k) for k in kinds), default=0) * 3)
    x, y = np.arange(n_cols), np.arange(n_rows)
    custom = np.array([[n or "" for n in row] for row in names], dtype=object).reshape(n_rows, n_cols)
    traces = [
        dict(type="heatmap", z=np.where(np.isfinite(Z), np.nan, 1.0), x=x, y=y, zmin=0, zmax=1, showscale=False,
             colorscale=[[0, PENDING], [1, PENDING]], xgap=2, ygap=2, hoverinfo="skip"),
        dict(type="heatmap", z=Z, x=x, y=y, zmin=0, zmax=zmax, colorscale=SEQUENTIAL, xgap=2, ygap=2, hoverinfo="skip",
             colorbar=dict(thickness=round(12 * scale), len=1, tickfont=dict(size=size))),
    ]
    # transparent square markers over the modules' cells: a click selects one (a heatmap itself returns no selection)
    ii, jj = np.meshgrid(y, x, indexing="ij")
    has = np.array([[bool(n) for n in row] for row in custom], dtype=bool).reshape(n_rows, n_cols).ravel()
    traces.append(dict(type="scatter", x=jj.ravel()[has], y=ii.ravel()[has], mode="markers", showlegend=False,
                       customdata=custom.ravel()[has], text=[fmt(v) for v in Z.ravel()[has]],
                       marker=dict(size=max(min(cell_h, width / max(n_cols, 1)) - 4, 6), color="rgba(0,0,0,0)",
                                   symbol="square"),
                       hovertemplate="%{customdata}: %{text}<br>click or tap to open it<extra></extra>"))
    if n_rows * n_cols <= 400 and cell_h >= 26:
        colours = text_colour_on(colours_at(SEQUENTIAL, np.nan_to_num(Z / zmax))).ravel()
        ii, jj = np.meshgrid(y, x, indexing="ij")
        finite = np.isfinite(Z).ravel()
        traces.append(dict(type="scatter", x=jj.ravel()[finite], y=ii.ravel()[finite], mode="text", showlegend=False,
                           hoverinfo="skip", text=[fmt(v) for v in Z.ravel()[finite]],
                           textfont=dict(size=size, color=colours[finite].tolist())))
    shapes = []
    if selected is not None:
        for i in range(n_rows):
            for j in range(n_cols):
                if custom[i, j] == selected:
                    shapes.append(dict(type="rect", x0=j - 0.5, x1=j + 0.5, y0=i - 0.5, y1=i + 0.5,
                                       fillcolor="rgba(0,0,0,0)", line=dict(color=LORA_COLOUR, width=4)))
    axis = dict(showgrid=False, zeroline=False, fixedrange=True, automargin=False, tickfont=dict(size=size))
    layout = dict(
        title=titled(title, scale, subtitle), font={**FONT, "size": size}, width=width, autosize=False,
        height=top_px + n_rows * cell_h + bottom, dragmode=False, clickmode="event+select",
        margin=dict(l=left, r=round(90 * scale), t=top_px, b=bottom, pad=0, autoexpand=False),
        xaxis=dict(**axis, tickmode="array", tickvals=x, ticktext=kinds, range=[-0.5, n_cols - 0.5], tickangle=-30),
        yaxis=dict(**axis, tickmode="array", tickvals=y, ticktext=layers, range=[n_rows - 0.5, -0.5]),
        shapes=shapes, plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)",
    )
    return fast_figure(traces, layout)


def spectrum_bars(sigma, k: int, *, title: str, width: float = 700, scale: float = 1.0) -> go.Figure:
    """σᵢ of ΔW as bars, the top k in LoRA's orange, with the cumulative share of ‖ΔW‖² as a line on its own axis."""
    sigma = np.asarray(sigma, dtype=float)
    i = np.arange(1, sigma.size + 1)
    energy = sigma ** 2
    share = np.cumsum(energy) / energy.sum() if energy.sum() > 0 else np.zeros_like(energy)
    size = round(FONT["size"] * scale)
    traces = [
        dict(type="bar", x=i, y=sigma, name="σᵢ", marker=dict(color=[LORA_COLOUR if n <= k else OTHER_COLOUR for n in i]),
             hovertemplate="σ%{x} = %{y:.4g}<extra></extra>"),
        dict(type="scatter", x=i, y=share, yaxis="y2", mode="lines+markers", name="share of ‖ΔW‖² in the top i",
             line=dict(color="#0072b2", width=3), hovertemplate="top %{x}: %{y:.1%}<extra></extra>"),
    ]
    layout = dict(
        title=titled(title, scale, f"orange: the top {k}; line: the share of ‖ΔW‖²_F the top i directions hold"),
        font={**FONT, "size": size}, width=width, height=round(380 * scale), autosize=False, dragmode=False,
        margin=dict(l=round(64 * scale), r=round(64 * scale), t=round(84 * scale), b=round(90 * scale)),
        xaxis=dict(title=dict(text="i (largest first)"), fixedrange=True, dtick=1 if sigma.size <= 32 else None),
        yaxis=dict(title=dict(text="σᵢ"), fixedrange=True, rangemode="tozero"),
        yaxis2=dict(overlaying="y", side="right", range=[0, 1.05], tickformat=".0%", tickvals=[0, 0.25, 0.5, 0.75, 1],
                    fixedrange=True, showgrid=False),
        legend=dict(orientation="h", y=-0.28, x=0), bargap=0.15,
        plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)",
    )
    return fast_figure(traces, layout)


def similarity_grid(phi, *, title: str, first: str, second: str, width: float = 520, scale: float = 1.0,
                    height: int | None = None) -> go.Figure:
    """φ(A₁, A₂, i, j) for i ≤ r₁ (rows) and j ≤ r₂ (columns), 0 to 1, as the LoRA paper's Figure 3."""
    P = np.asarray(phi, dtype=float)
    n_rows, n_cols = P.shape
    size = round(FONT["size"] * scale)
    cell = max(round(14 * scale), min(round(48 * scale), round(420 * scale / max(n_rows, n_cols))))
    if height is not None:  # fit the cells to the height given (a slide's room)
        cell = max(round(10 * scale), min(cell * 3, int((height - round(148 * scale)) / max(n_rows, 1))))
    traces = [dict(type="heatmap", z=np.where(np.isfinite(P), np.nan, 1.0), x=np.arange(1, n_cols + 1),
                   y=np.arange(1, n_rows + 1), zmin=0, zmax=1, showscale=False, colorscale=[[0, PENDING], [1, PENDING]],
                   xgap=1, ygap=1, hoverinfo="skip"),
              dict(type="heatmap", z=P, x=np.arange(1, n_cols + 1), y=np.arange(1, n_rows + 1), zmin=0, zmax=1,
                   colorscale=SEQUENTIAL, xgap=1, ygap=1, hovertemplate="φ(i=%{y}, j=%{x}) = %{z:.3f}<extra></extra>",
                   colorbar=dict(thickness=round(12 * scale), tickfont=dict(size=size)))]
    if n_rows * n_cols <= 144 and cell >= 30:  # a run not finished (NaN) is a pending "…"
        colours = np.where(np.isfinite(P), text_colour_on(colours_at(SEQUENTIAL, np.nan_to_num(P))), "#000000").ravel()
        ii, jj = np.meshgrid(np.arange(1, n_rows + 1), np.arange(1, n_cols + 1), indexing="ij")
        traces.append(dict(type="scatter", x=jj.ravel(), y=ii.ravel(), mode="text", showlegend=False, hoverinfo="skip",
                           text=[f"{v:.2f}" if np.isfinite(v) else PENDING_TEXT for v in P.ravel()],
                           textfont=dict(size=size, color=colours.tolist())))
    left, top, bottom = round(90 * scale), round(84 * scale), round(64 * scale)
    layout = dict(
        title=titled(title, scale, "1: one's top directions hold the other's · near 0: unrelated"),
        font={**FONT, "size": size}, width=max(width, left + n_cols * cell + 110), autosize=False, dragmode=False,
        height=top + n_rows * cell + bottom,
        margin=dict(l=left, r=round(100 * scale), t=top, b=bottom, autoexpand=False),
        xaxis=dict(title=dict(text=f"j: top directions of {second}"), fixedrange=True, dtick=1 if n_cols <= 16 else None),
        yaxis=dict(title=dict(text=f"i: of {first}"), fixedrange=True, autorange="reversed",
                   dtick=1 if n_rows <= 16 else None),
        plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)",
    )
    return fast_figure(traces, layout)
