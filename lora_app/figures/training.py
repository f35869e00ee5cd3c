"""Figures of the Training page: the loss curve."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .base import FONT, HIGHLIGHT, fast_figure
from .sizes import legend_below

LORA_COLOUR, FULL_COLOUR = "#e8590c", "#1f77b4"


def loss_curve(lora_losses: np.ndarray, full_losses: np.ndarray | None, step: int, *,
               lora_count: int, full_count: int, floor: float | None = None, height: int = 380, scale: float = 1.0,
               width: float = 700) -> go.Figure:
    """Loss before each update, LoRA against full fine-tuning, with the current step marked.

    The y axis is logarithmic when the losses span more than two decades, so a fall to 1e-6 stays visible.
    """
    lora_losses = np.asarray(lora_losses, dtype=float)
    traces = []
    if full_losses is not None:
        traces.append(dict(type="scatter", x=np.arange(1, len(full_losses) + 1), y=np.asarray(full_losses),
                           mode="lines", name=f"full fine-tuning: {full_count:,} trained numbers",
                           line=dict(color=FULL_COLOUR, width=3, dash="dot")))
    traces.append(dict(type="scatter", x=np.arange(1, len(lora_losses) + 1), y=lora_losses, mode="lines",
                       name=f"LoRA: {lora_count:,} trained numbers", line=dict(color=LORA_COLOUR, width=3)))
    shapes, annotations = [], []
    if 1 <= step <= len(lora_losses):
        traces.append(dict(type="scatter", x=[step], y=[lora_losses[step - 1]], mode="markers", name=f"step {step}",
                           marker=dict(size=14, color=LORA_COLOUR, line=dict(color=HIGHLIGHT, width=2))))
        shapes.append(dict(type="line", xref="x", yref="paper", x0=step, x1=step, y0=0, y1=1,
                           line=dict(color=HIGHLIGHT, width=1, dash="dash")))
    # a floor at rounding-error level (r ≥ r*) would only stretch the log axis
    if floor is not None and floor > 1e-9 * max(float(np.nanmax(lora_losses)), 1e-300):
        shapes.append(dict(type="line", xref="paper", yref="y", x0=0, x1=1, y0=floor, y1=floor,
                           line=dict(color="#6b7280", width=2, dash="dash")))
        annotations.append(dict(xref="paper", yref="y", x=1, y=floor, xanchor="right", yanchor="bottom",
                                text=f"best possible at rank r: {floor:.3g}", showarrow=False,
                                font=dict(color="#6b7280")))
    positive = np.concatenate([lora_losses, np.asarray(full_losses) if full_losses is not None else []])
    layout = loss_layout("Loss L before each update", traces, positive, height=height, scale=scale, width=width)
    for a in annotations:
        a["font"]["size"] = layout["font"]["size"]
    layout.update(shapes=shapes, annotations=annotations)
    return fast_figure(traces, layout)


def loss_layout(title: str, traces: list[dict], losses: np.ndarray, *, height: int, scale: float, width: float,
                loss_name: str = "mean squared error") -> dict:
    """The layout of a loss curve (the Training page's, the Family page's): the y axis logarithmic when the
    finite, positive ``losses`` span more than two decades, so a fall to 1e-6 stays visible; the legend below."""
    positive = np.asarray(losses, dtype=float)
    positive = positive[np.isfinite(positive) & (positive > 0)]
    # more than two decades apart (compared as logarithms: a diverged run's 1e300 over 1e-10 overflows a ratio)
    log = positive.size > 0 and np.log10(positive.max()) - np.log10(positive.min()) > 2
    legend, bottom = legend_below([t["name"] for t in traces], scale, width)
    size = round(FONT["size"] * scale)
    return dict(
        title=dict(text=title, x=0.02, font=dict(size=round(17 * scale))),
        font={**FONT, "size": size}, height=height,
        margin=dict(l=round(60 * scale), r=20, t=round(60 * scale), b=bottom),
        xaxis=dict(title=dict(text="optimisation step")),
        # as many labels as the height holds apart (a log axis of powers of ten otherwise stacks them)
        yaxis=dict(title=dict(text=loss_name), type="log" if log else "linear", exponentformat="power",
                   nticks=max(3, int((height - round(60 * scale) - bottom) / (size * 2.8)))),
        legend=legend, plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)",
    )
