"""Figures of the Rank page: singular values, the best error at each rank, and the parameter count."""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from .base import FONT, HIGHLIGHT, ROLE_COLOURS, lean_template

KEPT, DROPPED = ROLE_COLOURS["trainable"], "#9ca3af"
FULL_COLOUR = "#1f77b4"
BAR_TEXT_MAX = 16  # beyond this many bars, values are read by hovering


def _layout(fig: go.Figure, title: str, height: int, **kwargs) -> go.Figure:
    fig.update_layout(template=lean_template(), title=dict(text=title, x=0.02, xanchor="left", font=dict(size=17)), font=FONT,
                      height=height, margin=dict(l=70, r=24, t=64, b=56), plot_bgcolor="rgba(0,0,0,0)",
                      paper_bgcolor="rgba(0,0,0,0)", legend=dict(orientation="h", y=-0.22), **kwargs)
    fig.update_xaxes(showgrid=False, zeroline=False)
    fig.update_yaxes(gridcolor="#e5e7eb", zeroline=False)
    return fig


def singular_value_bars(sigma: np.ndarray, r: int, title: str, *, tol: float | None = None,
                        kept: str = "σ₁ … σ_r", dropped: str = "beyond r") -> go.Figure:
    """σᵢ as bars, the first r in orange; a log axis when they span many decades, with exact zeros at its floor.

    A log axis is what shows "zero": a rank-r product's σ_{r+1}… sit near 1e-16·σ₁, fifteen decades down.
    """
    sigma = np.asarray(sigma, dtype=float)
    i = np.arange(1, sigma.size + 1)
    positive = sigma[sigma > 0]
    fig = go.Figure()
    if positive.size == 0:  # a zero matrix: nothing to put on a log axis
        fig.add_trace(go.Bar(x=i, y=sigma, marker_color=DROPPED, name="every σ is 0"))
        fig.add_annotation(text="ΔW = 0: every singular value is exactly 0", x=0.5, y=0.5, xref="paper",
                           yref="paper", showarrow=False, font=dict(size=18))
        return _layout(fig, title, 400, xaxis=dict(title="i (largest first)"), yaxis=dict(title="σᵢ", range=[0, 1]))
    low = min(positive.min(), tol or positive.min())
    log = positive.size < sigma.size or low < 1e-3 * positive.max()
    floor = 10 ** (math.floor(math.log10(low)) - 2) if log else 0.0
    shown = np.where(sigma > 0, sigma, floor)
    labels = np.array([f"{s:.2g}" if s > 0 else "0" for s in sigma])
    with_text = sigma.size <= BAR_TEXT_MAX
    for mask, name, colour, where in ((i <= r, kept, KEPT, "outside"), (i > r, dropped, DROPPED, "inside")):
        if mask.any():
            fig.add_trace(go.Bar(
                x=i[mask], y=shown[mask], name=name, marker_color=colour, cliponaxis=False,
                text=labels[mask] if with_text else None, textposition=where if log else "outside",
                customdata=sigma[mask], hovertemplate="σ%{x} = %{customdata:.3e}<extra></extra>"))
    if tol:
        fig.add_hline(y=tol, line=dict(color=HIGHLIGHT, width=2, dash="dash"))
        # add_hline's own label lands off the plot on a log axis, whose annotations take log10(y)
        fig.add_annotation(x=1, xref="paper", y=math.log10(tol) if log else tol, text=f"rounding noise: {tol:.1e}",
                           xanchor="right", yanchor="bottom", showarrow=False, bgcolor="rgba(255,255,255,0.8)")
    fig.add_vline(x=r + 0.5, line=dict(color=KEPT, width=2))
    if log:
        bottom, top = math.log10(floor), math.log10(positive.max())
        yaxis = dict(type="log", range=[bottom, top + 0.15 * (top - bottom)], exponentformat="power",
                     dtick=max(1, math.ceil((top - bottom) / 6)), title="σᵢ (log scale)")
    else:
        yaxis = dict(range=[0, 1.18 * positive.max()], title="σᵢ")
    xaxis = dict(title="i (largest first)", **(dict(tickmode="array", tickvals=i) if with_text else {}))
    return _layout(fig, title, 400, xaxis=xaxis, yaxis=yaxis, bargap=0.15)


def error_curve(ranks: np.ndarray, errors: np.ndarray, r: int) -> go.Figure:
    """The best relative error ‖ΔW* − best rank-r‖/‖ΔW*‖ at every rank, with the current r marked."""
    ranks, pct = np.asarray(ranks), 100 * np.asarray(errors, dtype=float)
    fig = go.Figure(go.Scatter(x=ranks, y=pct, mode="lines+markers" if ranks.size <= 64 else "lines",
                               name="best rank-r error", line=dict(color=FULL_COLOUR, width=3),
                               hovertemplate="r = %{x}: %{y:.2f}%<extra></extra>"))
    if 1 <= r <= ranks.size:
        fig.add_trace(go.Scatter(x=[r], y=[pct[r - 1]], mode="markers+text", name=f"r = {r}",
                                 text=[f"r = {r}: {pct[r - 1]:.1f}%"], textposition="top right",
                                 marker=dict(size=16, color=KEPT, line=dict(color=HIGHLIGHT, width=2))))
    return _layout(fig, "Relative error of the best rank-r approximation", 400, showlegend=False,
                   xaxis=_rank_axis(ranks), yaxis=dict(title="‖ΔW* − best‖ / ‖ΔW*‖ (%)", range=[0, 105]))


def param_count_curve(ranks: np.ndarray, lora_counts: np.ndarray, full_count: int, break_even: float,
                      r: int) -> go.Figure:
    """LoRA's r·(d + k) against full fine-tuning's d·k; they cross at the break-even rank d·k/(d + k)."""
    ranks, lora_counts = np.asarray(ranks), np.asarray(lora_counts)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=ranks, y=np.full(ranks.size, full_count), mode="lines",
                             name=f"full fine-tuning: d·k = {full_count:,}", line=dict(color=FULL_COLOUR, width=3, dash="dot")))
    fig.add_trace(go.Scatter(x=ranks, y=lora_counts, mode="lines", name="LoRA: r·(d + k)",
                             line=dict(color=KEPT, width=3), hovertemplate="r = %{x}: %{y:,}<extra></extra>"))
    if 1 <= r <= ranks.size:
        fig.add_trace(go.Scatter(x=[r], y=[lora_counts[r - 1]], mode="markers", name=f"r = {r}: {lora_counts[r - 1]:,}",
                                 marker=dict(size=16, color=KEPT, line=dict(color=HIGHLIGHT, width=2))))
    fig.add_vline(x=break_even, line=dict(color=HIGHLIGHT, width=2, dash="dash"),
                  annotation_text=f"break-even r = d·k/(d + k) = {break_even:.4g}", annotation_position="top left")
    return _layout(fig, "Numbers to train, as r grows", 400, xaxis=_rank_axis(ranks),
                   yaxis=dict(title="trained numbers", rangemode="tozero"))


def _rank_axis(ranks: np.ndarray) -> dict:
    # whole ranks only: plotly would otherwise tick 1.5, 2.5 on a short axis
    return dict(title="rank r", **(dict(dtick=1) if ranks.size <= BAR_TEXT_MAX else {}))
