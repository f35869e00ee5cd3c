"""Figures of the Training page: the loss curve."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .base import FONT, HIGHLIGHT


LORA_COLOUR, FULL_COLOUR = "#e8590c", "#1f77b4"


def loss_curve(lora_losses: np.ndarray, full_losses: np.ndarray | None, step: int, *,
               lora_count: int, full_count: int, floor: float | None = None) -> go.Figure:
    """Loss before each update, LoRA against full fine-tuning, with the current step marked.

    The y axis is logarithmic when the losses span more than two decades, so a fall to 1e-6 stays visible.
    """
    steps = np.arange(1, len(lora_losses) + 1)
    fig = go.Figure()
    if full_losses is not None:
        fig.add_trace(go.Scatter(x=np.arange(1, len(full_losses) + 1), y=full_losses, mode="lines",
                                 name=f"full fine-tuning: {full_count:,} trained numbers",
                                 line=dict(color=FULL_COLOUR, width=3, dash="dot")))
    fig.add_trace(go.Scatter(x=steps, y=lora_losses, mode="lines",
                             name=f"LoRA: {lora_count:,} trained numbers", line=dict(color=LORA_COLOUR, width=3)))
    if 1 <= step <= len(lora_losses):
        fig.add_trace(go.Scatter(x=[step], y=[lora_losses[step - 1]], mode="markers", name=f"step {step}",
                                 marker=dict(size=14, color=LORA_COLOUR, line=dict(color=HIGHLIGHT, width=2))))
        fig.add_vline(x=step, line=dict(color=HIGHLIGHT, width=1, dash="dash"))
    # a floor at rounding-error level (r ≥ r*) would only stretch the log axis
    if floor is not None and floor > 1e-9 * max(float(np.nanmax(lora_losses)), 1e-300):
        fig.add_hline(y=floor, line=dict(color="#6b7280", width=2, dash="dash"),
                      annotation_text=f"best possible at rank r: {floor:.3g}", annotation_position="top right")
    positive = np.concatenate([lora_losses, full_losses if full_losses is not None else []])
    positive = positive[np.isfinite(positive) & (positive > 0)]
    log = positive.size > 0 and positive.max() / positive.min() > 100
    fig.update_layout(
        title=dict(text="Loss L before each update", x=0.02, font=dict(size=17)), font=FONT, height=380,
        margin=dict(l=60, r=20, t=60, b=50), xaxis_title="optimisation step", yaxis_title="mean squared error",
        yaxis=dict(type="log" if log else "linear", exponentformat="power"), legend=dict(orientation="h", y=-0.25),
        plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)",
    )
    return fig
