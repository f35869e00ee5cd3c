"""Figures of the Real model page: LoRA adapting the small pre-trained transformer of ``lora_core.tiny``.

Plain numbers in (lists, numpy arrays, dicts), ``go.Figure`` out. Accuracies are fractions in
0…1, as ``lora_core.finetune`` returns them; the figures keep them as they are and print them as
percentages. NaN marks a run that has not finished: it is drawn as pending, never as a number.
"""
from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go

from lora_core.rank import sigma_energy_share

from .attention import AXIS_TITLES
from .base import FONT, HIGHLIGHT, colours_at, fast_figure, text_colour_on
from .heatmap import matrix_heatmap
from .sizes import CELL_PAD, legend_below, natural_cell, text_width
from .training import FULL_COLOUR, LORA_COLOUR

# ColorBrewer's sequential YlGnBu: colour-blind safe, and light to dark on a projector too
SEQUENTIAL = [
    [0.0, "#ffffd9"], [0.125, "#edf8b1"], [0.25, "#c7e9b4"], [0.375, "#7fcdbb"], [0.5, "#41b6c4"],
    [0.625, "#1d91c0"], [0.75, "#225ea8"], [0.875, "#253494"], [1.0, "#081d58"],
]
PENDING = "#d1d5db"        # a run not finished yet: grey, with "…" in it
PENDING_TEXT = "…"
# Okabe & Ito's colours (told apart with every kind of colour blindness), each series with its own marker too
SERIES_COLOURS = ("#d55e00", "#0072b2", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000")
SERIES_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star")
SHADE = "rgba(232, 89, 12, 0.12)"   # LoRA's orange, faint: the top-r region of a spectrum
SIGMA_FLOOR = 1e-6                   # σ below this share of the largest are drawn at it (a log axis has no 0)
RIGHT_FILL, WRONG_FILL, PLAIN_FILL = "#cfe3f5", "#fdd9b5", "#f3f4f6"
RIGHT_MARK, WRONG_MARK = "✓", "✗"
LOSS_SHARE_FROM, ACCURACY_SHARE_TO = 0.58, 0.40   # the loss plot on top, the accuracy plot below, a gap between
LOG_DECADES = 2                      # a loss spanning more than this many decades gets a log axis


def _font(scale: float) -> int:
    return round(FONT["size"] * scale)


def titled(text: str, scale: float, subtitle: str | None = None) -> dict:
    out = dict(text=text, x=0.02, xanchor="left", font=dict(size=round(17 * scale)))
    if subtitle:
        out["subtitle"] = dict(text=subtitle, font=dict(size=round(0.75 * 17 * scale)))
    return out


def _floats(values) -> np.ndarray:
    # None (a value not there yet) becomes NaN
    return np.asarray(values if values is not None else [], dtype=float).ravel()


def percent(v: float) -> str:
    """A fraction as a percentage with one decimal, e.g. 0.9873 → "98.7 %"."""
    return f"{100 * v:.1f} %"


# --- 1. the training run ----------------------------------------------------------------------

def run_curves(losses, eval_steps, accuracies, *, full: tuple | None = None,
               title: str = "Training loss and held-out accuracy", height: int = 380, width: float = 700,
               scale: float = 1.0, total_steps: int | None = None, names: tuple[str, str] = ("LoRA", "full fine-tuning"),
               ) -> go.Figure:
    """The training loss (cross-entropy, top) and held-out token accuracy (bottom) of a run, step by step.

    The two plots share the step axis. ``full`` is full fine-tuning's (losses, eval_steps, accuracies),
    drawn dotted beside LoRA. ``total_steps`` fixes the step axis, so a curve that grows during a
    live run does not rescale it; a run with no step yet draws empty axes. The loss axis turns
    logarithmic when the losses span more than two decades.
    """
    size = _font(scale)
    runs = [(names[0], LORA_COLOUR, "solid", losses, eval_steps, accuracies)]
    if full is not None:
        runs.insert(0, (names[1], FULL_COLOUR, "dot", *full))
    traces, all_losses = [], []
    for name, colour, dash, run_losses, steps, accs in runs:
        run_losses, steps, accs = _floats(run_losses), _floats(steps), _floats(accs)
        all_losses.append(run_losses)
        line = dict(color=colour, width=3, dash=dash)
        traces.append(dict(type="scatter", x=np.arange(1, run_losses.size + 1), y=run_losses, xaxis="x", yaxis="y",
                           mode="lines" if run_losses.size > 1 else "markers", name=name, legendgroup=name,
                           line=line, marker=dict(color=colour, size=8),
                           hovertemplate=f"step %{{x}}: loss %{{y:.4g}}<extra>{name}</extra>"))
        traces.append(dict(type="scatter", x=steps, y=accs, xaxis="x2", yaxis="y2", mode="lines+markers",
                           name=name, legendgroup=name, showlegend=False, line=line,
                           marker=dict(color=colour, size=7),
                           hovertemplate=f"step %{{x}}: %{{y:.1%}} of held-out digits right<extra>{name}</extra>"))
    positive = np.concatenate(all_losses)
    positive = positive[np.isfinite(positive) & (positive > 0)]
    log = positive.size > 0 and positive.max() / positive.min() > 10 ** LOG_DECADES
    legend, bottom = legend_below([r[0] for r in runs], scale, width)
    top = round(56 * scale)
    plot_h = max(height - top - bottom, 1)
    x_range = [0, total_steps] if total_steps else None
    xaxis = dict(showgrid=False, zeroline=False, **({"range": x_range} if x_range else {}))
    layout = dict(
        title=titled(title, scale), font={**FONT, "size": size}, height=height, width=width, autosize=False,
        margin=dict(l=round(72 * scale), r=20, t=top, b=bottom),
        xaxis=dict(**xaxis, anchor="y", matches="x2", showticklabels=False),
        yaxis=dict(domain=[LOSS_SHARE_FROM, 1], title=dict(text="loss"), type="log" if log else "linear", exponentformat="power",
                   gridcolor="#e5e7eb", zeroline=False, nticks=max(3, int((1 - LOSS_SHARE_FROM) * plot_h / (size * 2.4)))),
        xaxis2=dict(**xaxis, anchor="y2", title=dict(text="training step")),
        yaxis2=dict(domain=[0, ACCURACY_SHARE_TO], title=dict(text="accuracy"), range=[0, 1.04], tickformat=".0%",
                    tickvals=[0, 0.25, 0.5, 0.75, 1] if ACCURACY_SHARE_TO * plot_h >= 5 * 2 * size else [0, 0.5, 1],
                    gridcolor="#e5e7eb", zeroline=False),
        legend=legend, plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)", hovermode="closest",
    )
    return fast_figure(traces, layout)


# --- 2. which layers to adapt, at one budget --------------------------------------------------

def sequential_colours(t) -> np.ndarray:
    """The colours of :data:`SEQUENTIAL` at each ``t`` in [0, 1] (0–255 RGB rows)."""
    return colours_at(SEQUENTIAL, t)


def best_cells(accuracy: np.ndarray) -> list[tuple[int, int]]:
    """(row, column) of the highest finished accuracy in each column (every one of them on a tie)."""
    A = np.asarray(accuracy, dtype=float)
    out = []
    for j in range(A.shape[1] if A.ndim == 2 else 0):
        col = A[:, j]
        if np.isfinite(col).any():
            out += [(int(i), j) for i in np.flatnonzero(col == np.nanmax(col))]
    return sorted(out)


def placement_grid(placements: list[str], tasks: list[str], accuracy, trainable: list[int], *,
                   title: str = "Held-out accuracy at one budget of trained numbers", height: int | None = None,
                   width: float = 700, scale: float = 1.0,
                   subtitle: str = "rows: where LoRA goes · its rank · numbers it trains; outlined: best per task"
                   ) -> go.Figure:
    """Where to put LoRA: one row per placement ("Q", "Q+V", …, full fine-tuning), one column per task.

    Each cell prints its held-out accuracy ("98.7 %") in black or white, whichever reads better on
    its colour; a run not finished (NaN) is a grey cell with "…". The best cell of each column is
    outlined. Row labels end with the numbers the placement trains, e.g. "Q+V · r=4 · 1,024".
    """
    n_rows, n_cols = len(placements), len(tasks)
    A = np.asarray(accuracy, dtype=float).reshape(n_rows, n_cols) if n_rows * n_cols else np.zeros((n_rows, n_cols))
    if len(trainable) != n_rows:
        raise ValueError(f"{len(trainable)} trainable counts for {n_rows} placements: give one per row")
    size, number = _font(scale), round(17 * scale)
    labels = [f"{p} · {int(n):,}" for p, n in zip(placements, trainable)]
    left = int(max((text_width(t, size) for t in labels), default=0) + 16 * scale)
    top, bottom = round(76 * scale), round(size * 1.6 + 12)
    right = int((24 + 8 + 12) * scale + text_width("100 %", size))  # the bar, its pad and its gap grow with the text
    cell_h = round(max(number * 2.2, 40 * scale))
    height = height or top + max(n_rows, 1) * cell_h + bottom
    pending = ~np.isfinite(A)
    x, y = np.arange(n_cols), np.arange(n_rows)
    traces = [
        dict(type="heatmap", z=np.where(pending, 1.0, np.nan), x=x, y=y, zmin=0, zmax=1, showscale=False,
             colorscale=[[0, PENDING], [1, PENDING]], xgap=2, ygap=2, hoverinfo="skip"),
        dict(type="heatmap", z=A, x=x, y=y, zmin=0, zmax=1, colorscale=SEQUENTIAL, xgap=2, ygap=2,
             customdata=np.array([[f"{p} on {t}" for t in tasks] for p in placements], dtype=object).reshape(n_rows, n_cols),
             hovertemplate="%{customdata}: %{z:.1%} of held-out digits right<extra></extra>",
             colorbar=dict(thickness=round(12 * scale), len=1, tickformat=".0%", tickvals=[0, 0.25, 0.5, 0.75, 1],
                           tickfont=dict(size=size), xpad=round(8 * scale))),
    ]
    if A.size:
        colours = np.where(pending, "#000000", text_colour_on(sequential_colours(np.nan_to_num(A)))).ravel()
        ii, jj = np.meshgrid(y, x, indexing="ij")
        traces.append(dict(type="scatter", x=jj.ravel(), y=ii.ravel(), mode="text", showlegend=False, hoverinfo="skip",
                           text=[PENDING_TEXT if not np.isfinite(v) else percent(v) for v in A.ravel()],
                           textfont=dict(size=number, color=colours.tolist())))
    shapes = []
    for i, j in best_cells(A):
        for colour, w in (("white", 7), (HIGHLIGHT, 3)):
            shapes.append(dict(type="rect", x0=j - 0.5, x1=j + 0.5, y0=i - 0.5, y1=i + 0.5,
                               fillcolor="rgba(0,0,0,0)", line=dict(color=colour, width=w)))
    axis = dict(showgrid=False, zeroline=False, fixedrange=True, automargin=False, tickfont=dict(size=size))
    layout = dict(
        title=titled(title, scale, subtitle),
        font={**FONT, "size": size}, height=height, width=width, autosize=False,
        margin=dict(l=left, r=right, t=top, b=bottom, pad=0, autoexpand=False),
        xaxis=dict(**axis, side="bottom", tickmode="array", tickvals=x, ticktext=list(tasks), range=[-0.5, n_cols - 0.5]),
        yaxis=dict(**axis, tickmode="array", tickvals=y, ticktext=labels, range=[n_rows - 0.5, -0.5]),
        shapes=shapes, plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)", dragmode=False,
    )
    return fast_figure(traces, layout)


# --- 3. the rank -------------------------------------------------------------------------------

def rank_curve(ranks: list[int], accuracy: dict[str, list[float]], *, full: dict[str, float] | None = None,
               title: str = "Held-out accuracy against the rank r", height: int = 360, width: float = 700,
               scale: float = 1.0) -> go.Figure:
    """Accuracy at each rank, one line with its own colour and marker per series, r on a log₂ axis.

    ``full`` gives full fine-tuning's accuracy per series, drawn as a dashed line in the series'
    colour. A rank not finished (NaN) leaves a gap in its line.
    """
    size = _font(scale)
    ranks = [int(r) for r in ranks]
    traces, shapes, names = [], [], []
    for k, (name, accs) in enumerate(accuracy.items()):
        colour, symbol = SERIES_COLOURS[k % len(SERIES_COLOURS)], SERIES_SYMBOLS[k % len(SERIES_SYMBOLS)]
        traces.append(dict(type="scatter", x=ranks, y=_floats(accs), mode="lines+markers", name=name,
                           line=dict(color=colour, width=3), marker=dict(color=colour, size=round(11 * scale), symbol=symbol),
                           hovertemplate=f"r = %{{x}}: %{{y:.1%}}<extra>{name}</extra>"))
        names.append(name)
        value = (full or {}).get(name)
        if value is not None and np.isfinite(value):
            label = f"{name}: full fine-tuning" if len(accuracy) > 1 else "full fine-tuning"
            # a line trace rather than a shape: it gets a legend entry and a hover, and the data carries the number
            traces.append(dict(type="scatter", x=[min(ranks, default=1), max(ranks, default=1)], y=[value, value],
                               mode="lines", name=f"{label} ({percent(value)})", line=dict(color=colour, width=2, dash="dash"),
                               hovertemplate=f"full fine-tuning: {percent(value)}<extra>{name}</extra>"))
            names.append(traces[-1]["name"])
    legend, bottom = legend_below(names, scale, width)
    layout = dict(
        title=titled(title, scale), font={**FONT, "size": size}, height=height, width=width, autosize=False,
        margin=dict(l=round(72 * scale), r=20, t=round(56 * scale), b=bottom),
        xaxis=dict(type="log", title=dict(text="rank r"), tickmode="array", tickvals=ranks, ticktext=[str(r) for r in ranks],
                   showgrid=False, zeroline=False,
                   **({"range": _log2_range(ranks)} if ranks else {})),
        yaxis=dict(title=dict(text="held-out accuracy"), range=[0, 1.04], tickformat=".0%",
                   tickvals=[0, 0.25, 0.5, 0.75, 1], gridcolor="#e5e7eb", zeroline=False),
        legend=legend, shapes=shapes, plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)",
    )
    return fast_figure(traces, layout)


def _log2_range(ranks: list[int]) -> list[float]:
    # half a doubling of room either side, so the end markers are not cut in half (plotly's log range is in log10)
    lo, hi = math.log10(max(min(ranks), 1)), math.log10(max(max(ranks), 1))
    pad = 0.5 * math.log10(2)
    return [lo - pad, hi + pad]


# --- 4. the spectrum of ΔW ---------------------------------------------------------------------

def update_spectrum(full_sigma, lora_sigma, r: int, title: str, *, height: int = 300, width: float = 500,
                    scale: float = 1.0) -> go.Figure:
    """The singular values of ΔW, largest first, for full fine-tuning's update and LoRA's.

    The first r are shaded, and the subtitle gives the share of Σσᵢ² they hold for each update.
    On the log axis a σ below a millionth of the largest (LoRA's beyond r are rounding noise) is
    drawn at that floor; its hover says so and gives its true value.
    """
    size = _font(scale)
    series = [(n, c, s) for n, c, s in (("full fine-tuning", FULL_COLOUR, full_sigma), ("LoRA", LORA_COLOUR, lora_sigma))
              if s is not None]
    sigmas = [(n, c, np.sort(np.abs(_floats(s)))[::-1]) for n, c, s in series]
    biggest = max((float(s.max()) for _, _, s in sigmas if s.size), default=0.0)
    floor = SIGMA_FLOOR * biggest
    small = any((s < floor).any() for _, _, s in sigmas)
    positive = np.concatenate([s[s > 0] for _, _, s in sigmas] or [np.zeros(0)])
    log = biggest > 0 and (small or positive.max() / positive.min() > 10 ** LOG_DECADES)
    traces, shares = [], {}
    for name, colour, s in sigmas:
        shares[name] = sigma_energy_share(s, r)
        shown = np.maximum(s, floor) if log else s
        notes = [f"σ{i} = {v:.3g}" + (" (≈ 0: drawn at the axis floor)" if log and v < floor else "")
                 for i, v in enumerate(s, 1)]
        traces.append(dict(type="scatter", x=np.arange(1, s.size + 1), y=shown, customdata=s, text=notes,
                           mode="lines+markers", name=name,
                           line=dict(color=colour, width=2, dash="dot" if colour == FULL_COLOUR else "solid"),
                           marker=dict(color=colour, size=round(8 * scale),
                                       symbol="square" if colour == FULL_COLOUR else "circle"),
                           hovertemplate=f"%{{text}}<extra>{name}</extra>"))
    n = max((s.size for _, _, s in sigmas), default=0)
    shapes = []
    if n and r >= 1:
        shapes.append(dict(type="rect", xref="x", yref="paper", x0=0.5, x1=min(r, n) + 0.5, y0=0, y1=1,
                           fillcolor=SHADE, line=dict(width=0), layer="below"))
    sub = (f"share of Σσ² in the top {r}: " + " · ".join(f"{name} {percent(v)}" for name, v in shares.items())
           if shares else "no update yet")
    legend, bottom = legend_below([t["name"] for t in traces], scale, width)
    yaxis = dict(title=dict(text="σᵢ"), gridcolor="#e5e7eb", zeroline=False)
    if log:
        lo, hi = math.log10(floor), math.log10(biggest)
        yaxis.update(type="log", exponentformat="power", range=[lo - 0.3, hi + 0.3], dtick=max(1, math.ceil((hi - lo) / 4)))
    else:
        yaxis.update(rangemode="tozero")
    layout = dict(
        title=titled(title, scale, sub), font={**FONT, "size": size}, height=height, width=width, autosize=False,
        margin=dict(l=round(64 * scale), r=16, t=round(72 * scale), b=bottom),
        xaxis=dict(title=dict(text="i (largest first)"), showgrid=False, zeroline=False,
                   **({"range": [0.5, n + 0.5]} if n else {}), **({"dtick": 1} if 0 < n <= 16 else {})),
        yaxis=yaxis, legend=legend, shapes=shapes, plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)",
        meta={"energy_share": shares, "floor": floor if log else None},
    )
    return fast_figure(traces, layout)


# --- 5. attention, with the tokens on the axes ---------------------------------------------------

def attention_map_tokens(M, tokens_query: list[str], tokens_key: list[str], title: str, *, zmax: float = 1.0,
                         decimals: int = 2, show_scale: bool = False, scale: float = 1.0,
                         cell_px: int | None = None) -> go.Figure:
    """An n×n attention map (row i: query token, column j: key token) with the tokens on its axes.

    It is the Attention page's map (:func:`matrix_heatmap`, the same colours and numbers), with
    ``tokens_query`` down the side and ``tokens_key`` along the bottom instead of 1, 2, …; its
    cells are at least as wide as the widest key token.
    """
    M = np.asarray(M, dtype=float)
    if cell_px is None and M.size:
        widest = max((text_width(str(t), _font(scale)) for t in tokens_key), default=0)
        cell_px = max(natural_cell(M, decimals, scale=scale), int(widest + CELL_PAD))
    return matrix_heatmap(M, title, zmax=zmax, decimals=decimals, show_scale=show_scale, scale=scale, cell_px=cell_px,
                          axis_titles=AXIS_TITLES, row_labels=list(tokens_query), col_labels=list(tokens_key))


# --- 6. one sequence, as written by each model --------------------------------------------------

def sequence_grid(rows: dict[str, list[int]], target: list[int], *, tokens: list[int] | None = None,
                  target_label: str = "right answer", tokens_label: str = "typed",
                  title: str = "One sequence, digit by digit", scale: float = 1.0, width: float = 700,
                  height: int | None = None) -> go.Figure:
    """Rows of digits: the typed ``tokens`` (when given), the right answer ``target``, then each of ``rows``.

    Every digit of ``rows`` (the models' outputs, name → digits) is checked against ``target``: a
    right one is blue with ✓, a wrong one orange with ✗, so the mark never rests on colour alone.
    Each checked row's label says how many of its digits are right.
    """
    shown = [(tokens_label, list(tokens), False)] if tokens is not None else []
    shown += [(target_label, list(target), False)] + [(n, list(d), True) for n, d in rows.items()]
    target = list(target)
    n_cols = max((len(d) for _, d, _ in shown), default=0)
    labels, codes, texts = [], [], []
    for name, digits, checked in shown:
        row_codes, row_text, right = [], [], 0
        for j in range(n_cols):
            if j >= len(digits) or digits[j] is None:
                row_codes.append(np.nan)
                row_text.append("")
                continue
            d = int(digits[j])
            if not checked:
                row_codes.append(0.0)
                row_text.append(str(d))
            else:
                ok = j < len(target) and target[j] is not None and d == int(target[j])
                right += ok
                row_codes.append(1.0 if ok else 2.0)
                row_text.append(f"{d} {RIGHT_MARK if ok else WRONG_MARK}")
        labels.append(f"{name} · {right}/{len(target)} right" if checked else name)
        codes.append(row_codes)
        texts.append(row_text)
    size, number = _font(scale), round(19 * scale)
    left = int(max((text_width(t, size) for t in labels), default=0) + 16 * scale)
    top, right_margin = round(76 * scale), 12
    cell_h = round(number * 2.1)
    height = height or top + len(shown) * cell_h + round(12 * scale)
    x, y = np.arange(n_cols), np.arange(len(shown))
    z = np.array(codes, dtype=float).reshape(len(shown), n_cols)
    traces = [dict(type="heatmap", z=z, x=x, y=y, zmin=0, zmax=2, showscale=False, xgap=3, ygap=3, hoverinfo="skip",
                   colorscale=[[0, PLAIN_FILL], [0.25, PLAIN_FILL], [0.25, RIGHT_FILL], [0.75, RIGHT_FILL],
                               [0.75, WRONG_FILL], [1, WRONG_FILL]])]
    if z.size:
        ii, jj = np.meshgrid(y, x, indexing="ij")
        traces.append(dict(type="scatter", x=jj.ravel(), y=ii.ravel(), mode="text", showlegend=False, hoverinfo="skip",
                           text=[t for row in texts for t in row], textfont=dict(size=number, color="#000000")))
    axis = dict(showgrid=False, zeroline=False, fixedrange=True, automargin=False, tickfont=dict(size=size))
    layout = dict(
        title=titled(title, scale, f"{RIGHT_MARK} blue: the right digit · {WRONG_MARK} orange: a wrong digit"),
        font={**FONT, "size": size}, height=height, width=width, autosize=False,
        margin=dict(l=left, r=right_margin, t=top, b=round(12 * scale), pad=0, autoexpand=False),
        xaxis=dict(**axis, showticklabels=False, range=[-0.5, max(n_cols, 1) - 0.5]),
        yaxis=dict(**axis, tickmode="array", tickvals=y, ticktext=labels, range=[len(shown) - 0.5, -0.5]),
        plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)", dragmode=False,
    )
    return fast_figure(traces, layout)
