"""The matrix heatmap every page and slide draws, at the cell size its row was given."""
from __future__ import annotations

import math
import re

import numpy as np
import plotly.graph_objects as go

from .base import (
    DIVERGING,
    FONT,
    HIGHLIGHT,
    ROLE_COLOURS,
    TEXT_MAX_SIDE,
    FigureSpec,
    block_means,
    cell_font_size,
    cell_text_colours,
    role_subtitle,
    shape_label,
    symmetric_range,
    value_format,
)
from .sizes import (
    MIN_FIGURE_PX,
    finite_values,
    fit_labels,
    fit_numbers,
    format_value,
    heatmap_frame,
    natural_cell,
    roomy_cell,
    text_width,
    title_width,
)


def matrix_heatmap(M: np.ndarray, title: str, *, zmax: float | None = None, role: str | None = None,
                   decimals: int | None = None, show_scale: bool = False, text_size: int | None = None,
                   rows: tuple[int, ...] = (), cols: tuple[int, ...] = (), cell: tuple[int, int] | None = None,
                   clickable: bool = False, cell_px: int | None = None, scale: float = 1.0,
                   axis_titles: tuple[str, str] | None = None, break_title: bool = False,
                   row_labels: list[str] | None = None, col_labels: list[str] | None = None) -> go.Figure:
    """A matrix as a heatmap (see :func:`matrix_heatmap_spec`, which this builds into a go.Figure)."""
    return matrix_heatmap_spec(M, title, zmax=zmax, role=role, decimals=decimals, show_scale=show_scale,
                               text_size=text_size, rows=rows, cols=cols, cell=cell, clickable=clickable,
                               cell_px=cell_px, scale=scale, axis_titles=axis_titles, break_title=break_title,
                               row_labels=row_labels, col_labels=col_labels).figure()


def matrix_heatmap_spec(M: np.ndarray, title: str, *, zmax: float | None = None, role: str | None = None,
                        decimals: int | None = None, show_scale: bool = False, text_size: int | None = None,
                        rows: tuple[int, ...] = (), cols: tuple[int, ...] = (), cell: tuple[int, int] | None = None,
                        clickable: bool = False, cell_px: int | None = None, scale: float = 1.0,
                        axis_titles: tuple[str, str] | None = None, break_title: bool = False,
                        row_labels: list[str] | None = None, col_labels: list[str] | None = None,
                        labels: np.ndarray | None = None) -> FigureSpec:
    """A matrix as a heatmap with its numbers in the cells; rows and columns are numbered from 1.

    ``role`` frames it as frozen (grey, dashed) or trainable (orange); ``rows``, ``cols`` and
    ``cell`` (0-based) outline what a breakdown uses; ``clickable`` lays invisible markers
    over the cells so a click selects one (plotly heatmaps themselves return no selection).
    ``cell_px`` is the side of one cell in pixels (a figure row passes one size to all its
    matrices, see :func:`row_layout`); the figure's width and height follow from it exactly.
    ``scale`` enlarges every font, for slides read from the back of a room; ``break_title`` lets a
    long title put the shape on its second line (``row_layout`` says when). A number that
    does not fit its cell is printed with fewer decimals, or not at all (hover still reads it).
    ``row_labels`` and ``col_labels`` (one text per row or column, e.g. the tokens of an attention
    map) replace the numbers 1, 2, … on the axes; without them the axes are numbered as before.
    ``labels`` (a text per cell, M's shape) are printed instead of M's numbers, which still give the colours:
    the 4-bit code of each weight, coloured by the value it stands for.
    """
    M = np.asarray(M, dtype=float)
    shown, b = block_means(M)
    n_rows, n_cols = shown.shape
    can_print = b == 1 and max(M.shape) <= TEXT_MAX_SIDE
    # masked attention scores are NaN: drawn blank, left out of formats and ranges
    F = finite_values(M) if (can_print or zmax is None) else M
    zmax = symmetric_range(F) if zmax is None else zmax
    base_fmt = value_format(F, decimals) if can_print else ".3f"
    base_font = round((text_size or cell_font_size(M.shape)) * scale)
    px = cell_px or (natural_cell(M, decimals, text_size, scale) if can_print else roomy_cell(M.shape, text_size, scale))
    if labels is not None and np.shape(labels) != M.shape:
        raise ValueError(f"labels are {np.shape(labels)}, the matrix {M.shape}")
    if not can_print:
        numbers = None
    elif labels is not None:
        numbers = fit_labels(labels, px, base_font, scale)
    else:
        numbers = fit_numbers(F, base_fmt, px, base_font, scale)
    x = np.arange(n_cols) * b + 1
    y = np.arange(n_rows) * b + 1
    sub = role_subtitle(role, b, can_print)
    frame = heatmap_frame(M, title, sub, show_scale, scale, axis_titles)
    row_labels, col_labels = _labels(row_labels, M.shape[0], b), _labels(col_labels, M.shape[1], b)
    if row_labels is not None:  # room on the left for the widest label instead of the widest row number
        numbered = text_width(str(n_rows * b), frame.tick_font)
        widest = max(text_width(t, frame.tick_font) for t in row_labels)
        frame = frame._replace(left=frame.left + int(max(0.0, widest - numbered)))
    plot_w = frame.left + n_cols * px + frame.right
    # a title wider than its matrix may put the shape on the second line (when its row says so), so
    # thin matrices stay thin in a crowded row
    one_line = not break_title or title_width(f"{title} {shape_label(M)}", None, frame.title_font) <= plot_w
    full_title = f"{title} {shape_label(M)}" if one_line else title
    if not one_line:
        sub = " · ".join(part for part in (shape_label(M), sub) if part)
    width = max(plot_w, title_width(full_title, sub, frame.title_font), MIN_FIGURE_PX)
    height = frame.top + n_rows * px + frame.bottom
    note = None
    if can_print and numbers is None:
        note = "dropped"
    elif numbers is not None and labels is None and numbers[0] != base_fmt:
        kept = int(re.match(r"[.](\d+)", numbers[0]).group(1))
        note = f"rounded to {kept} decimal{'s' if kept != 1 else ''}"
    traces = [dict(
        type="heatmap", z=shown, x=x, y=y, zmin=-zmax, zmax=zmax, zmid=0, colorscale=DIVERGING,
        # as many colour-bar labels as its height holds without touching
        showscale=show_scale, colorbar=dict(thickness=12, len=1, lenmode="fraction", xpad=8,
                                            tickfont=dict(size=frame.tick_font),
                                            nticks=max(2, int(n_rows * px / (frame.tick_font * 2.4)))),
        hovertemplate=f"row %{{y}}, column %{{x}}<br>%{{z:.6~g}}<extra>{title}</extra>",
        # gaps only around printed numbers: with them plotly draws big heatmaps brick by brick (1 s at 128×128)
        xgap=1 if can_print else 0, ygap=1 if can_print else 0,
    )]
    if numbers is not None or (clickable and b == 1):
        ii, jj = np.meshgrid(y, x, indexing="ij")
        # one scatter carries the printed numbers (each in black or white, whichever reads better on its cell)
        # and, when clickable, the transparent markers that make a cell selectable
        trace = dict(type="scatter", x=jj.ravel(), y=ii.ravel(), showlegend=False,
                     mode="+".join(m for m, on in (("markers", clickable), ("text", numbers is not None)) if on))
        if numbers is not None:
            fmt, font = numbers
            trace.update(text=[str(t) for t in np.asarray(labels).ravel()] if labels is not None else
                         [format_value(v, fmt) if np.isfinite(v) else "" for v in M.ravel()],
                         textposition="middle center",
                         textfont=dict(size=font, color=cell_text_colours(np.nan_to_num(M.ravel()), zmax)))
        if clickable:
            trace.update(marker=dict(size=max(px - 2, 6), color="rgba(0,0,0,0)", symbol="square"),
                         customdata=M.ravel(),
                         hovertemplate="row %{y}, column %{x}: %{customdata:.4f}<br>click or tap to break it down"
                                       "<extra></extra>")
        else:
            trace["hoverinfo"] = "skip"
        traces.append(trace)
    shapes = _outlines(rows, cols, cell, n_rows * b, n_cols * b)
    if role:
        shapes.append(dict(type="rect", x0=0.5, y0=0.5, x1=n_cols * b + 0.5, y1=n_rows * b + 0.5,
                           line=dict(color=ROLE_COLOURS[role], width=4, dash="dash" if role == "frozen" else "solid")))
    # no automargin (the theme turns it on): the margins are counted above, so the cells keep their size;
    # tick labels never larger than a cell, so neighbouring indices never touch
    tick_font = min(frame.tick_font, max(int(px / 1.35), 8)) if len(x) <= 16 and len(y) <= 16 else frame.tick_font
    axis = dict(showgrid=False, zeroline=False, fixedrange=True, automargin=False, tickfont=dict(size=tick_font))
    layout = dict(
        title=dict(text=full_title, x=0, xref="container", xanchor="left", y=1, yref="container", yanchor="top",
                   pad=dict(t=round(6 + 0.3 * frame.title_font), l=4), font=dict(size=frame.title_font), automargin=False,
                   subtitle=dict(text=sub or "", font=dict(size=round(0.75 * frame.title_font)))),
        font={**FONT, "size": frame.tick_font},
        width=width, height=height, autosize=False,
        # autoexpand off: the colour bar must not push the cells narrower than the row's other matrices
        margin=dict(l=frame.left, r=width - frame.left - n_cols * px, t=frame.top, b=frame.bottom, pad=0, autoexpand=False),
        shapes=shapes,
        xaxis=dict(side="bottom", range=[0.5, n_cols * b + 0.5], **axis,
                   **(_ticks(x, px / b, text_width(str(int(x[-1])), tick_font) + 4) if col_labels is None
                      else dict(tickmode="array", tickvals=x, ticktext=col_labels, tickangle=0))),
        yaxis=dict(range=[n_rows * b + 0.5, 0.5], **axis,
                   **(_ticks(y, px / b, tick_font * 1.25) if row_labels is None
                      else dict(tickmode="array", tickvals=y, ticktext=row_labels))),
        plot_bgcolor="rgba(0,0,0,0)", paper_bgcolor="rgba(0,0,0,0)", dragmode=False,
        clickmode="event+select" if clickable else "event",
        meta={"numbers": note},
    )
    if axis_titles:  # each as long as its side allows: ("key token j (attended to)", "key j", ""), ...
        # each title is centred on its side of the cells, and may reach into the margins by as much on both ends
        x_room = n_cols * px + 2 * min(frame.left, width - frame.left - n_cols * px)
        for name, choices, room in (("xaxis", axis_titles[0], x_room), ("yaxis", axis_titles[1], n_rows * px)):
            choices = (choices,) if isinstance(choices, str) else choices
            fitting = next((c for c in choices if text_width(c, frame.tick_font) <= room - 4), "")
            layout[name]["title"] = dict(text=fitting, standoff=4, font=dict(size=frame.tick_font))
    return FigureSpec(traces, layout)


def numbers_note(fig: go.Figure | FigureSpec) -> str | None:
    """What a figure did to fit its numbers (printed fewer decimals, or none), for a caption under it."""
    meta = fig.meta if isinstance(fig, FigureSpec) else fig.layout.meta
    return (meta or {}).get("numbers") if isinstance(meta, dict) else None


def _labels(labels, side: int, b: int) -> list[str] | None:
    # one label per row (or column); a block-averaged matrix has no single token per cell, so none are named
    if labels is None or b > 1:
        return None
    labels = [str(t) for t in labels]
    if len(labels) != side:
        raise ValueError(f"{len(labels)} labels for {side} rows or columns: give one label each")
    return labels


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


def _ticks(positions: np.ndarray, cell_px: float = 50, need_px: float = 14) -> dict:
    # every index while they fit; every second, third, ... when the cells are smaller than a label;
    # plotly's own spacing beyond 16
    if len(positions) <= 16:
        every = max(1, math.ceil(need_px / max(cell_px, 1)))
        shown = positions[::every]
        return dict(tickmode="array", tickvals=shown, ticktext=[str(p) for p in shown])
    return dict(tickmode="auto", nticks=12)
