"""The shared look (colour scales, fonts, sizes) and the matrix heatmap every page uses.

Matrices that are compared share one symmetric range, so equal colours mean equal values.
"""
from __future__ import annotations

import copy
import functools
import math

import numpy as np
import plotly.graph_objects as go

# ColorBrewer RdBu, reversed so negative is blue: a colour-blind-safe diverging scale centred at 0
DIVERGING = [
    [0.0, "#2166ac"], [0.2, "#67a9cf"], [0.4, "#d1e5f0"], [0.5, "#f7f7f7"],
    [0.6, "#fddbc7"], [0.8, "#ef8a62"], [1.0, "#b2182b"],
]
ROLE_COLOURS = {"frozen": "#6b7280", "trainable": "#e8590c", None: "rgba(0,0,0,0)"}
ROLE_LABELS = {"frozen": "frozen", "trainable": "trainable", None: ""}
HIGHLIGHT = "#111827"
FONT = dict(family="DejaVu Sans, Arial, sans-serif", size=15)
TEXT_MAX_SIDE = 32       # above this, per-cell numbers would be unreadable: drop them
DISPLAY_MAX_SIDE = 128   # above this, show block means so the browser gets a small image


def symmetric_range(*arrays: np.ndarray) -> float:
    """The largest |value| over all arrays: one shared, zero-centred colour range."""
    m = max((float(np.max(np.abs(a))) for a in arrays if a.size), default=0.0)
    return m if m > 0 else 1.0


def display_decimals(*arrays: np.ndarray, max_decimals: int = 3) -> int:
    """The fewest decimals (up to ``max_decimals``) that show every value exactly."""
    for dec in range(max_decimals + 1):
        if all(np.allclose(a, np.round(a, dec), rtol=0, atol=1e-9) for a in arrays):
            return dec
    return max_decimals


def block_means(M: np.ndarray, max_side: int = DISPLAY_MAX_SIDE) -> tuple[np.ndarray, int]:
    """Average b×b blocks so that no side exceeds ``max_side``; returns (means, b)."""
    b = max(1, math.ceil(max(M.shape) / max_side))
    if b == 1:
        return M, 1
    rows, cols = math.ceil(M.shape[0] / b), math.ceil(M.shape[1] / b)
    padded = np.full((rows * b, cols * b), np.nan)
    padded[: M.shape[0], : M.shape[1]] = M
    return np.nanmean(padded.reshape(rows, b, cols, b), axis=(1, 3)), b


def shape_label(M: np.ndarray) -> str:
    return f"({M.shape[0]}×{M.shape[1]})"


def value_format(M: np.ndarray, decimals: int | None = None) -> str:
    """A d3 format for the numbers in the cells: fixed decimals, or exponents when every value is tiny."""
    biggest = float(np.max(np.abs(M))) if M.size else 0.0
    if 0 < biggest < 1e-3:
        return ".2~e"  # AdamW's v is often 1e-6: fixed decimals would print a wall of 0.000
    return f".{display_decimals(M) if decimals is None else decimals}f"


def matrix_heatmap(M: np.ndarray, title: str, *, zmax: float | None = None, role: str | None = None,
                   decimals: int | None = None, show_scale: bool = False, text_size: int | None = None,
                   rows: tuple[int, ...] = (), cols: tuple[int, ...] = (), cell: tuple[int, int] | None = None,
                   clickable: bool = False, height: int | None = None, scale: float = 1.0) -> go.Figure:
    """A matrix as a heatmap with its numbers in the cells; rows and columns are numbered from 1.

    ``role`` frames it as frozen (grey, dashed) or trainable (orange); ``rows``, ``cols`` and
    ``cell`` (0-based) outline what a breakdown uses; ``clickable`` lays invisible markers
    over the cells so a click selects one (plotly heatmaps themselves return no selection).
    ``scale`` enlarges every font, for slides read from the back of a room.
    """
    M = np.asarray(M, dtype=float)
    shown, b = block_means(M)
    n_rows, n_cols = shown.shape
    zmax = symmetric_range(M) if zmax is None else zmax
    fmt = value_format(M, decimals)
    with_text = b == 1 and max(M.shape) <= TEXT_MAX_SIDE
    x = np.arange(n_cols) * b + 1
    y = np.arange(n_rows) * b + 1
    subtitle = f"<span style='color:{ROLE_COLOURS[role]}'><b>{ROLE_LABELS[role]}</b></span>" if role else ""
    if b > 1:
        subtitle += f" shown as means of {b}×{b} blocks"
    elif not with_text:
        subtitle += " too large for numbers: hover to read"
    full_title = f"{title} {shape_label(M)}" + (f"<br><sup>{subtitle.strip()}</sup>" if subtitle else "")
    traces = [dict(
        type="heatmap", z=shown, x=x, y=y, zmin=-zmax, zmax=zmax, zmid=0, colorscale=DIVERGING,
        showscale=show_scale, colorbar=dict(thickness=12, len=0.9),
        texttemplate=f"%{{z:{fmt}}}" if with_text else None,
        textfont=dict(size=round((text_size or _text_size(M.shape)) * scale)),
        hovertemplate=f"row %{{y}}, column %{{x}}<br>%{{z:.6~g}}<extra>{title}</extra>",
        # gaps only around printed numbers: with them plotly draws big heatmaps brick by brick (1 s at 128×128)
        xgap=1 if with_text else 0, ygap=1 if with_text else 0,
    )]
    if clickable and b == 1:
        ii, jj = np.meshgrid(y, x, indexing="ij")
        traces.append(dict(
            type="scatter", x=jj.ravel(), y=ii.ravel(), mode="markers", showlegend=False,
            marker=dict(size=28, color="rgba(0,0,0,0)", symbol="square"), customdata=M.ravel(),
            hovertemplate="row %{y}, column %{x}: %{customdata:.4f}<br>click to break it down<extra></extra>",
        ))
    shapes = _outlines(rows, cols, cell, n_rows * b, n_cols * b)
    if role:
        shapes.append(dict(type="rect", x0=0.5, y0=0.5, x1=n_cols * b + 0.5, y1=n_rows * b + 0.5,
                           line=dict(color=ROLE_COLOURS[role], width=4, dash="dash" if role == "frozen" else "solid")))
    layout = dict(
        title=dict(text=full_title, x=0.02, xanchor="left", font=dict(size=round(17 * scale))),
        font={**FONT, "size": round(FONT["size"] * scale)},
        height=height or _height(n_rows, round(_cell_px(M, fmt, text_size) * scale) if with_text else 0, scale),
        margin=dict(l=round(36 * scale), r=12 if not show_scale else 4, t=round(70 * scale), b=round(28 * scale)),
        shapes=shapes,
        xaxis=dict(side="bottom", showgrid=False, zeroline=False, constrain="domain", **_ticks(x)),
        yaxis=dict(autorange="reversed", showgrid=False, zeroline=False, scaleanchor="x", constrain="domain",
                   **_ticks(y)),
        plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)", dragmode=False,
        clickmode="event+select" if clickable else "event",
    )
    return fast_figure(traces, layout)


def fast_figure(traces: list[dict], layout: dict) -> go.Figure:
    """A figure from plain dicts, skipping plotly's per-property validation, with a lean template.

    Validation is most of the cost of a small figure (12 ms against 1 ms for a 5×3 heatmap), and a
    page draws a dozen per slider move; tests rebuild every builder's output with validation on.
    """
    return go.Figure(dict(data=traces, layout={"template": lean_template(), **layout}), _validate=False)


# what our figures use of a template: the rest (polar, ternary, geo, 3-D scenes, two dozen trace types)
# is 80% of a small figure's bytes, and the browser reads all of it on every draw
_TEMPLATE_LAYOUT = ("autotypenumbers", "colorway", "font", "hovermode", "hoverlabel", "paper_bgcolor", "plot_bgcolor",
                    "coloraxis", "colorscale", "xaxis", "yaxis", "shapedefaults", "annotationdefaults", "title", "legend")
_TEMPLATE_TRACES = ("heatmap", "scatter", "bar")


def lean_template() -> dict:
    """The default plotly template (Streamlit's theme, inside the app) cut to what these figures use.

    Its colours stay as they are, so the app's light and dark themes still restyle the figures.
    """
    import plotly.io as pio

    return copy.deepcopy(_lean(pio.templates.default))


@functools.lru_cache(maxsize=4)
def _lean(name: str) -> dict:
    import plotly.io as pio

    full = pio.templates[name].to_plotly_json()
    return {"layout": {k: v for k, v in full.get("layout", {}).items() if k in _TEMPLATE_LAYOUT},
            "data": {k: v for k, v in full.get("data", {}).items() if k in _TEMPLATE_TRACES}}


def _outlines(rows, cols, cell, height: int, width: int) -> list[dict]:
    # a dark line on a white one: it shows on pale and dark cells, and on the dark theme's background
    boxes = [(dict(x0=0.5, x1=width + 0.5, y0=i + 0.5, y1=i + 1.5), 3) for i in rows]
    boxes += [(dict(x0=j + 0.5, x1=j + 1.5, y0=0.5, y1=height + 0.5), 3) for j in cols]
    if cell is not None:
        i, j = cell
        boxes.append((dict(x0=j + 0.5, x1=j + 1.5, y0=i + 0.5, y1=i + 1.5), 5))
    shapes = []
    for box, width_px in boxes:
        for colour, extra in (("white", 4), (HIGHLIGHT, 0)):
            shapes.append(dict(type="rect", fillcolor="rgba(0,0,0,0)", line=dict(color=colour, width=width_px + extra), **box))
    return shapes


def _ticks(positions: np.ndarray) -> dict:
    # every index while they fit; plotly's own spacing beyond that
    if len(positions) <= 16:
        return dict(tickmode="array", tickvals=positions, ticktext=[str(p) for p in positions])
    return dict(tickmode="auto", nticks=12)


def _cell_px(M: np.ndarray, fmt: str, text_size: int | None) -> int:
    # wide enough for the longest printed number at the text size used
    chars = 7 if fmt.endswith("e") else max(len(f"{v:{fmt}}") for v in (M.min(), M.max()))
    return max(46, int(chars * 0.62 * (text_size or _text_size(M.shape))) + 14)


def _height(rows: int, cell_px: int, scale: float = 1.0) -> int:
    if cell_px:
        return int(min(98 * scale + cell_px * rows, 640))
    return int(min(max(98 + 12 * rows, 260), 560))


def _text_size(shape) -> int:
    side = max(shape)
    return 17 if side <= 6 else 14 if side <= 12 else 11 if side <= 20 else 9

