"""Figures of the Family page: the six variants' loss curves, and the sixteen NF4 levels with the ones W uses."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from .base import FONT, HIGHLIGHT, fast_figure
from .sizes import legend_below
from .training import LORA_COLOUR, loss_layout

# mid-tone colours that keep 3:1 against the light and the dark theme's background, each with its own dash,
# so that the six lines stay apart without colour
STYLES = {
    "lora": (LORA_COLOUR, "solid"),
    "qlora": ("#1f77b4", "dash"),
    "dora": ("#2ca02c", "dot"),
    "pissa": ("#9467bd", "dashdot"),
    "loraplus": ("#d62728", "longdash"),
    "vera": ("#7f7f7f", "longdashdot"),
    "vera_wide": ("#7f7f7f", "dot"),   # VeRA again at a far larger r (the Real model page): its colour, another dash
}
USED, UNUSED = "#1f77b4", "#9ca3af"


def variant_curves(losses: dict[str, np.ndarray], names: dict[str, str], trained: dict[str, int], *,
                   height: int = 440, scale: float = 1.0, width: float = 900, title: str = "Loss before each step",
                   loss_name: str = "mean squared error") -> go.Figure:
    """Each variant's loss at every step, on one axis; log when it spans two decades. The Family page's curves hold
    the loss before every step and after the last (mean squared error), the Real model page's the cross-entropy of
    each step's batch."""
    traces = []
    for variant, values in losses.items():
        colour, dash = STYLES[variant]
        y = np.asarray(values, dtype=float)
        traces.append(dict(type="scatter", x=np.arange(1, y.size + 1), y=y, mode="lines",
                           name=f"{names[variant]}: {trained[variant]:,} trained",
                           line=dict(color=colour, width=3, dash=dash),
                           hovertemplate=f"{names[variant]}, step %{{x}}: %{{y:.4g}}<extra></extra>"))
    finite = np.concatenate([np.asarray(v, dtype=float) for v in losses.values()])
    layout = loss_layout(title, traces, finite, height=height, scale=scale, width=width, loss_name=loss_name)
    return fast_figure(traces, layout)


def nf4_levels_figure(levels: np.ndarray, counts: np.ndarray, *, height: int = 340, scale: float = 1.0) -> go.Figure:
    """The sixteen levels as bars over their codes 0–15; the codes W uses are coloured and carry their count."""
    levels = np.asarray(levels, dtype=float)
    counts = np.asarray(counts, dtype=int)
    codes = np.arange(levels.size)
    used = counts > 0
    size = round(FONT["size"] * scale)
    traces = []
    for mask, name, colour in ((used, "used by W (× weights)", USED),
                               (~used, "not used", UNUSED)):
        if mask.any():
            traces.append(dict(type="bar", x=codes[mask], y=levels[mask], name=name, marker=dict(color=colour),
                               text=[f"×{c}" if c else "" for c in counts[mask]], textposition="outside",
                               cliponaxis=False, customdata=np.stack([levels[mask], counts[mask]], axis=1),
                               hovertemplate="code %{x}: level %{customdata[0]:.6f}, %{customdata[1]} weights"
                                             "<extra></extra>"))
    legend, bottom = legend_below([t["name"] for t in traces], scale, 700)
    layout = dict(
        title=dict(text="The sixteen NF4 levels, by code", x=0.02, font=dict(size=round(17 * scale))),
        font={**FONT, "size": size}, height=height, barmode="overlay",
        margin=dict(l=round(60 * scale), r=20, t=round(60 * scale), b=bottom),
        xaxis=dict(title=dict(text="code"), tickmode="array", tickvals=codes, ticktext=[str(c) for c in codes]),
        yaxis=dict(title=dict(text="level"), range=[-1.25, 1.25], zeroline=True, zerolinecolor=HIGHLIGHT),
        legend=legend, plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)",
    )
    return fast_figure(traces, layout)

