"""Figures of the Scale page: training memory by component, and the measured step benchmark."""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from lora_core.scale import human_bytes

from .base import FONT, HIGHLIGHT, ROLE_COLOURS, lean_template
from .sizes import legend_below, text_width

LORA_COLOUR, FULL_COLOUR = ROLE_COLOURS["trainable"], "#1f77b4"
# frozen weights grey, as everywhere in the app; what training adds in blues and oranges
PART_COLOURS = {"weights": ROLE_COLOURS["frozen"], "gradients": "#fdae6b", "master_weights": "#9ecae1",
                "optimizer_states": "#3182bd"}
PART_LABELS = {"weights": "weights (fp16)", "gradients": "gradients (fp16)",
               "master_weights": "fp32 master copy", "optimizer_states": "AdamW exp_avg + exp_avg_sq (fp32)"}


def _style(fig: go.Figure, title: str, height: int, *, bottom: int = 50, legend_y: float = -0.25, scale: float = 1.0,
           width: float | None = None) -> go.Figure:
    size = round(FONT["size"] * scale)
    legend = dict(orientation="h", y=legend_y, traceorder="normal")
    right = 20
    if width is not None:  # a legend counted onto lines under the axis title, never over it
        names = [t.name or "" for t in fig.data if t.showlegend is not False]
        legend, bottom = legend_below(names, scale, width)
        if height - bottom - 64 * scale < 110 * scale:  # no room left for the bars: the legend goes to the right
            small = round(size * 0.8)
            right = int(max(text_width(n, small) for n in names) + 50 * scale)
            legend = dict(orientation="v", x=1, xanchor="left", xref="paper", y=0.5, yanchor="middle",
                          font=dict(size=small), tracegroupgap=0, itemsizing="constant")
            bottom = int(size * 3.6 + 10)
        legend["traceorder"] = "normal"
    fig.update_layout(template=lean_template(), title=dict(text=title, x=0.02, xanchor="left", font=dict(size=round(17 * scale))),
                      font={**FONT, "size": size}, height=height,
                      margin=dict(l=round(130 * scale), r=right, t=round(64 * scale), b=bottom), plot_bgcolor="rgba(0,0,0,0)",
                      paper_bgcolor="rgba(0,0,0,0)", legend=legend)
    fig.update_xaxes(gridcolor="#e5e7eb", zeroline=False, title_standoff=round(10 * scale), automargin=True)
    return fig


def memory_bars(full: dict[str, int], lora: dict[str, int], title: str, *, height: int = 360, scale: float = 1.0,
                width: float = 700) -> go.Figure:
    """Stacked bars of training memory in GB: what each part costs, full fine-tuning against LoRA."""
    rows = ["LoRA", "full fine-tuning"]
    fig = go.Figure()
    for part, label in PART_LABELS.items():
        values = np.array([lora[part], full[part]], dtype=float) / 1e9
        fig.add_trace(go.Bar(y=rows, x=values, name=label, orientation="h", marker_color=PART_COLOURS[part],
                             customdata=[human_bytes(lora[part]), human_bytes(full[part])],
                             hovertemplate=f"{label}: %{{customdata}}<extra>%{{y}}</extra>"))
    for row, parts in zip(rows, (lora, full)):
        total = sum(parts.values())
        fig.add_annotation(x=total / 1e9, y=row, text=f"<b>{human_bytes(total)}</b>", xanchor="left",
                           showarrow=False, xshift=6, font=dict(size=round(16 * scale)))
    long = "GB: weights + gradients + optimizer states (activations not counted)"
    fig.update_layout(barmode="stack", xaxis_title=long if text_width(long, FONT["size"] * scale) < width - 400 * scale
                      else "GB (activations not counted)")
    fig = _style(fig, title, height, scale=scale, width=width)
    # room right of the longest bar for its total, counted in px of the plot (on a phone too)
    plot_w = max(width - fig.layout.margin.l - fig.layout.margin.r, 80)
    label = max(text_width(human_bytes(sum(p.values())), 16 * scale) for p in (full, lora)) * 1.15 + 14 * scale
    fig.update_xaxes(range=[0, max(sum(full.values()), sum(lora.values())) / 1e9 / max(1 - label / plot_w, 0.3)])
    return fig


def benchmark_figure(full_ms: np.ndarray, lora_ms: np.ndarray, full_state: int, lora_state: int) -> go.Figure:
    """Left: every timed step in ms with the median marked. Right: gradients + AdamW states of what is trained."""
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.16,
                        subplot_titles=("time per training step (ms)", "gradients + AdamW states"))
    for name, times, state, colour in (("LoRA", lora_ms, lora_state, LORA_COLOUR),
                                       ("full fine-tuning", full_ms, full_state, FULL_COLOUR)):
        times = np.asarray(times, dtype=float)
        fig.add_trace(go.Box(x=times, y=[name] * times.size, name=name, orientation="h", boxpoints="all",
                             jitter=0.4, pointpos=0, marker=dict(color=colour, size=8), line=dict(color=colour),
                             fillcolor="rgba(0,0,0,0)", showlegend=False,
                             hovertemplate="%{x:.2f} ms<extra></extra>"), row=1, col=1)
        fig.add_trace(go.Bar(x=[state / 1e6], y=[name], orientation="h", marker_color=colour, showlegend=False,
                             text=[human_bytes(state)], textposition="outside", cliponaxis=False,
                             hovertemplate=f"{human_bytes(state)}<extra></extra>"), row=1, col=2)
    fig.update_xaxes(title_text="ms (each dot one step)", rangemode="tozero", row=1, col=1)
    fig.update_xaxes(title_text="MB", range=[0, 1.3 * max(full_state, lora_state) / 1e6], row=1, col=2)
    fig.update_yaxes(showticklabels=False, row=1, col=2)
    fig.update_annotations(font=dict(size=16, color=HIGHLIGHT))
    return _style(fig, "Measured on this machine", 320)


METHOD_COLOURS = {"full": FULL_COLOUR, "lora": LORA_COLOUR, "qlora": "#2ca02c"}
METHOD_SHORT = {"full": "full", "lora": "LoRA", "qlora": "QLoRA"}


def gpu_totals(totals: dict[str, float], names: dict[str, str], cards: list[tuple[str, float]], title: str, *,
               height: int = 330, scale: float = 1.0, width: float = 700) -> go.Figure:
    """Each method's estimated peak memory as a bar, on a log axis with a dotted line at each card's memory.

    ``totals`` are keyed "full", "lora", "qlora"; ``names`` give their long names (for hovering). Card labels take
    turns on two lines, and one that would still touch its neighbour on a narrow screen is left out (its line stays).
    """
    keys = list(totals)
    values = np.array([totals[k] for k in keys], dtype=float) / 1e9
    size = round(FONT["size"] * scale)
    shown = np.ceil(values * 10) / 10  # rounded up to the tenth, as the tables and sentences round a total
    fig = go.Figure(go.Bar(y=[METHOD_SHORT[k] for k in keys], x=values, orientation="h",
                           marker_color=[METHOD_COLOURS[k] for k in keys], text=[f"{v:,.1f} GB" for v in shown],
                           textposition="outside", cliponaxis=False, customdata=[names[k] for k in keys],
                           hovertemplate="%{customdata}: %{x:,.1f} GB<extra></extra>", showlegend=False))
    sizes = sorted({gb for _, gb in cards})
    low = min(values.min(), sizes[0] / 1e9) / 1.6
    high = max(values.max(), sizes[-1] / 1e9) * 4
    left = int(max(text_width(METHOD_SHORT[k], size) for k in keys) + 16 * scale)
    right = int(text_width(f"{values.max():,.1f} GB", size) + 12 * scale)
    plot_w = max(width - left - right, 80)
    label_font = round(12 * scale)
    ends = [-1e9, -1e9]  # where the last label on each of the two lines ends, in px
    for i, gb in enumerate(sizes):
        fig.add_vline(x=gb / 1e9, line=dict(color="#6b7280", width=1.5, dash="dot"))
        text = f"{gb / 1e9:g} GB"
        centre = (np.log10(gb / 1e9) - np.log10(low)) / (np.log10(high) - np.log10(low)) * plot_w
        half = text_width(text, label_font) / 2 + 3
        line = i % 2 if centre - half > ends[i % 2] else 1 - i % 2
        if centre - half <= ends[line]:
            continue  # no room on either line
        ends[line] = centre + half
        fig.add_annotation(x=np.log10(gb / 1e9), y=1, yref="paper", yanchor="bottom", text=text,
                           hovertext=" / ".join(name for name, mem in cards if mem == gb), showarrow=False,
                           yshift=round((2 + 18 * line) * scale), font=dict(size=label_font, color="#4b5563"))
    fig.update_xaxes(type="log", range=[np.log10(low), np.log10(high)], dtick=1, title="GB, log scale (10⁹ bytes)")
    fig = _style(fig, title, height, scale=scale)
    fig.update_layout(margin=dict(t=round(104 * scale), l=left, r=right))
    return fig
