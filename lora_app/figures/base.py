"""The shared look (colour scales, fonts, sizes) and the matrix heatmap every page uses.

Matrices that are compared share one symmetric range, so equal colours mean equal values.
"""
from __future__ import annotations

import copy
import functools
import itertools
import math
import re
from typing import NamedTuple

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
                   clickable: bool = False, cell_px: int | None = None, scale: float = 1.0,
                   axis_titles: tuple[str, str] | None = None, break_title: bool = False) -> go.Figure:
    """A matrix as a heatmap with its numbers in the cells; rows and columns are numbered from 1.

    ``role`` frames it as frozen (grey, dashed) or trainable (orange); ``rows``, ``cols`` and
    ``cell`` (0-based) outline what a breakdown uses; ``clickable`` lays invisible markers
    over the cells so a click selects one (plotly heatmaps themselves return no selection).
    ``cell_px`` is the side of one cell in pixels (a figure row passes one size to all its
    matrices, see :func:`row_layout`); the figure's width and height follow from it exactly.
    ``scale`` enlarges every font, for slides read from the back of a room; ``break_title`` lets a
    long title put the shape on its second line (``row_layout`` says when). A number that
    does not fit its cell is printed with fewer decimals, or not at all (hover still reads it).
    """
    M = np.asarray(M, dtype=float)
    shown, b = block_means(M)
    n_rows, n_cols = shown.shape
    can_print = b == 1 and max(M.shape) <= TEXT_MAX_SIDE
    # masked attention scores are NaN: drawn blank, left out of formats and ranges
    F = _finite(M) if (can_print or zmax is None) else M
    zmax = symmetric_range(F) if zmax is None else zmax
    base_fmt = value_format(F, decimals) if can_print else ".3f"
    base_font = round((text_size or _text_size(M.shape)) * scale)
    px = cell_px or (natural_cell(M, decimals, text_size, scale) if can_print else roomy_cell(M.shape, text_size, scale))
    numbers = fit_numbers(F, base_fmt, px, base_font, scale) if can_print else None
    x = np.arange(n_cols) * b + 1
    y = np.arange(n_rows) * b + 1
    sub = _subtitle(role, b, can_print)
    frame = heatmap_frame(M, title, sub, show_scale, scale, axis_titles)
    plot_w = frame.left + n_cols * px + frame.right
    # a title wider than its matrix may put the shape on the second line (when its row says so), so
    # thin matrices stay thin in a crowded row
    one_line = not break_title or text_width(f"{title} {shape_label(M)}", frame.title_font) * 1.08 + 8 <= plot_w
    full_title = f"{title} {shape_label(M)}" if one_line else title
    if not one_line:
        sub = " · ".join(part for part in (shape_label(M), sub) if part)
    width = max(plot_w, _title_width(full_title, sub, frame.title_font), MIN_FIGURE_PX)
    height = frame.top + n_rows * px + frame.bottom
    note = None
    if can_print and numbers is None:
        note = "dropped"
    elif numbers is not None and numbers[0] != base_fmt:
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
            trace.update(text=[format_value(v, fmt) if np.isfinite(v) else "" for v in M.ravel()],
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
        xaxis=dict(side="bottom", range=[0.5, n_cols * b + 0.5], **axis, **_ticks(x, px / b, text_width(str(int(x[-1])), tick_font) + 4)),
        yaxis=dict(range=[n_rows * b + 0.5, 0.5], **axis, **_ticks(y, px / b, tick_font * 1.25)),
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
    return fast_figure(traces, layout)


# --- sizes: one cell size for a row of matrices, numbers that always fit --------------------------

NUMBER_FONT_MIN = 11  # px at scale 1: a smaller printed number is not worth reading; hover instead
CELL_PAD = 8          # px of a cell left around its number
MIN_FIGURE_PX = 160   # Streamlit widens a narrower chart in a row (and its cells with it): never go below
ROLE_SWATCH = "■"


class Frame(NamedTuple):
    """The pixels around a heatmap's cells: margins for the title, ticks and colour bar."""
    left: int
    right: int
    top: int
    bottom: int
    min_width: int  # the title's own width: a figure is never narrower
    tick_font: int
    title_font: int


# advance widths in em, DejaVu Sans (the widest of the fonts the figures name); anything else counts as 0.7
_EM = {**dict.fromkeys("0123456789", 0.64), ".": 0.32, ",": 0.32, "−": 0.84, "-": 0.84, "+": 0.84, "e": 0.62,
       " ": 0.32, "(": 0.4, ")": 0.4, "×": 0.84, "·": 0.32, "_": 0.5, "=": 0.84, "/": 0.34, "i": 0.28, "l": 0.28,
       "j": 0.28, "I": 0.3, "t": 0.4, "f": 0.36, "r": 0.42, "s": 0.52, ":": 0.34, "’": 0.32, "'": 0.28}


def format_value(v: float, fmt: str) -> str:
    """A cell's number as d3 would print it with ``fmt`` (".3f", or ".2~e": trailing zeros trimmed), with a true minus."""
    m = re.fullmatch(r"[.](\d+)(~?)([ef])", fmt)
    d, trim, kind = int(m.group(1)), m.group(2), m.group(3)
    if kind == "f":
        out = f"{v:.{d}f}"
    else:
        mantissa, exp = f"{v:.{d}e}".split("e")
        if trim and "." in mantissa:
            mantissa = mantissa.rstrip("0").rstrip(".")
        out = f"{mantissa}e{int(exp)}"
    return out.replace("-", "−")


def text_width(text: str, size: float) -> float:
    """A generous estimate of ``text``'s width in px at ``size`` px (tags stripped)."""
    plain = re.sub(r"<[^>]+>", "", text)
    return sum(_EM.get(ch, 0.7) for ch in plain) * size


def fit_numbers(M: np.ndarray, fmt: str, cell_px: int, font: int, scale: float = 1.0) -> tuple[str, int] | None:
    """The format and font size at which every number of ``M`` fits a ``cell_px`` cell, or None.

    The font shrinks to fit, down to a readable minimum; below it, one decimal after another is
    dropped (two at most); if that is not enough, no numbers are printed.
    """
    least = min(round(NUMBER_FONT_MIN * max(scale, 1.0)), font)  # a big matrix asks for small numbers itself
    for f in _fewer_decimals(fmt):
        widest = max(text_width(format_value(v, f), 1) for v in (M.min(), M.max(), *_widest(M)))
        size = min(font, (cell_px - CELL_PAD) / widest, (cell_px - 4) / 1.3)
        if size >= least:
            return f, int(size)
    return None


def natural_cell(M: np.ndarray, decimals: int | None = None, text_size: int | None = None, scale: float = 1.0) -> int:
    """The cell side at which ``M``'s numbers print at their full size (the size pages prefer)."""
    font = round((text_size or _text_size(M.shape)) * scale)
    M = _finite(M)
    fmt = value_format(M, decimals)
    widest = max(text_width(format_value(v, fmt), font) for v in (M.min(), M.max(), *_widest(M))) if M.size else font
    return int(max(round(46 * scale), widest + CELL_PAD + 6))


def roomy_cell(shape, text_size: int | None = None, scale: float = 1.0) -> int:
    """A cell that holds "−0.000" at the matrix's full text size: the size a page's row aims for.

    It depends on the shape only, not on the numbers, so a row keeps its cell size (and the browser
    keeps its figures) while r changes the numbers of A_Q and B_Q.
    """
    font = round((text_size or _text_size(shape)) * scale)
    return int(max(round(46 * scale), text_width("−0.000", font) + CELL_PAD + 6))


def display_shape(shape, max_side: int = DISPLAY_MAX_SIDE) -> tuple[int, int, int]:
    """(rows, columns, b) of what :func:`block_means` draws for a matrix of ``shape``, without computing it."""
    b = max(1, math.ceil(max(shape) / max_side))
    return math.ceil(shape[0] / b), math.ceil(shape[1] / b), b


def heatmap_frame(M: np.ndarray, title: str, subtitle: str | None, show_scale: bool, scale: float = 1.0,
                  axis_titles: tuple[str, str] | None = None) -> Frame:
    """The margins around a heatmap's cells. The top always holds two lines: the title, and the
    subtitle (role, blocks, or the shape when the title had to break)."""
    tick, title_font = round(FONT["size"] * scale), round(17 * scale)
    rows, _, b = display_shape(np.shape(M))
    last_row = rows * b
    left = int(text_width(str(last_row), tick) + 14 + 0.25 * tick + (tick * 1.6 if axis_titles else 0))
    bottom = int(tick * 1.4 + 10 + (tick * 1.5 if axis_titles else 0))
    top = int(title_font * 1.3 + title_font * 0.75 * 1.35 + title_font * 0.75 + 16)
    right = int(12 + 8 + text_width("−0.0000", tick) + 12) if show_scale else 10
    # narrowest the figure can be: the title alone on its line, the shape moved down to the subtitle's
    sub = " · ".join(part for part in (shape_label(np.asarray(M)), subtitle) if part)
    return Frame(left, right, top, bottom, max(_title_width(title, sub, title_font), MIN_FIGURE_PX), tick, title_font)


def _title_width(title: str, subtitle: str | None, title_font: int) -> int:
    return int(max(text_width(title, title_font), text_width(subtitle or "", 0.75 * title_font)) * 1.08 + 10)


class RowLayout(NamedTuple):
    cell: int                 # px of every cell in the row
    lines: list[list[int]]    # the items' indices, line by line
    break_titles: bool        # whether a long title may move the shape to its second line


def row_layout(items, width: float, height: float | None = None, scale: float = 1.0, gap: float = 16,
               cell_max: int | None = None, cell_min: int = 2) -> RowLayout:
    """One cell size for matrices shown side by side, and how they wrap onto lines.

    ``items`` are (matrix, title, heatmap kwargs). The cell is the largest (up to ``cell_max``,
    by default :func:`roomy_cell`) for which every line fits ``width`` and all lines together fit
    ``height`` (None: no limit). Lines are tried from one up; without a height limit the fewest
    lines whose cells reach 70% of the cap win, with one the largest cell. Titles stay on one line
    unless breaking the long ones (the shape moves under the title) gives larger cells.
    """
    specs = {False: [], True: []}
    for M, title, kw in items:
        rows, cols, b = display_shape(np.shape(M))
        can_print = b == 1 and max(np.shape(M)) <= TEXT_MAX_SIDE
        sub = _subtitle(kw.get("role"), b, can_print)
        frame = heatmap_frame(M, title, sub, kw.get("show_scale", False), scale, kw.get("axis_titles"))
        roomy = roomy_cell(np.shape(M), kw.get("text_size"), scale)
        one_line = max(_title_width(f"{title} {shape_label(np.empty(np.shape(M)))}", sub, frame.title_font), MIN_FIGURE_PX)
        specs[True].append((rows, cols, frame, roomy))
        specs[False].append((rows, cols, frame._replace(min_width=one_line), roomy))
    cap = cell_max or max(s[3] for s in specs[False])
    enough = cap if height is not None else int(0.7 * cap)  # a page would rather shrink cells a little than wrap
    best = None
    for breaking in (False, True):
        for lines in _partitions(len(items)):
            c = _largest_cell(specs[breaking], lines, width, height, gap, cap, cell_min)
            if best is None or c > best.cell:  # ties keep the fewer lines, and titles whole
                best = RowLayout(c, lines, breaking)
            if c >= enough:
                break
        if best.cell >= enough:
            break
    return best


def _largest_cell(specs, lines, width, height, gap, cap, floor) -> int:
    def fits(c: int) -> bool:
        for line in lines:
            w = sum(max(specs[i][2].left + specs[i][1] * c + specs[i][2].right, specs[i][2].min_width) for i in line)
            if w + gap * (len(line) - 1) > width:
                return False
        if height is not None:
            h = sum(max(specs[i][2].top + specs[i][0] * c + specs[i][2].bottom for i in line) for line in lines)
            if h + gap * (len(lines) - 1) > height:
                return False
        return True
    lo, hi = floor, cap
    if not fits(lo):
        return lo
    while lo < hi:
        mid = (lo + hi + 1) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid - 1)
    return lo


def _partitions(n: int):
    """Every split of n items, in order, into consecutive lines: one line first, then two, ..."""
    for k in range(1, n + 1):
        for cuts in itertools.combinations(range(1, n), k - 1):
            bounds = (0, *cuts, n)
            yield [list(range(bounds[i], bounds[i + 1])) for i in range(k)]


def _fewer_decimals(fmt: str):
    yield fmt
    m = re.fullmatch(r"\.(\d+)(~?)([ef])", fmt)
    if m:
        d = int(m.group(1))
        # never below one decimal: 0.3 printed as "0" would be a wrong number, not a rounded one
        for fewer in range(d - 1, max(d - 3, 0), -1):
            yield f".{fewer}{m.group(2)}{m.group(3)}"


def _finite(M: np.ndarray) -> np.ndarray:
    F = np.asarray(M, dtype=float)
    F = F[np.isfinite(F)]
    return F if F.size else np.zeros(1)


def _widest(M: np.ndarray) -> np.ndarray:
    # the most negative and the largest: with the minimum and maximum these hold the longest labels
    flat = M.ravel()
    return flat[np.argsort(-np.abs(flat))[:2]] if flat.size else flat


def _subtitle(role, b: int, can_print: bool) -> str | None:
    parts = []
    if role:
        parts.append(f"<span style='color:{ROLE_COLOURS[role]}'>{ROLE_SWATCH}</span> <b>{ROLE_LABELS[role]}</b>")
    if b > 1:
        parts.append(f"shown as means of {b}×{b} blocks")
    elif not can_print:
        parts.append("too large for numbers: hover to read")
    return " · ".join(parts) or None


def numbers_note(fig: go.Figure) -> str | None:
    """What a figure did to fit its numbers (printed fewer decimals, or none), for a caption under it."""
    return (fig.layout.meta or {}).get("numbers") if isinstance(fig.layout.meta, dict) else None


def cell_text_colours(values: np.ndarray, zmax: float) -> list[str]:
    """Black or white for each cell's number, whichever contrasts more with that cell's colour (vectorised)."""
    t = np.clip((np.asarray(values, dtype=float) / (zmax or 1.0) + 1) / 2, 0, 1)
    stops = np.array([p for p, _ in DIVERGING])
    rgb = np.stack([np.interp(t, stops, [_hex(c)[i] for _, c in DIVERGING]) for i in range(3)], axis=-1) / 255
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    lum = linear @ np.array([0.2126, 0.7152, 0.0722])
    # contrast with black (lum + 0.05) / 0.05 against with white 1.05 / (lum + 0.05)
    black = (lum + 0.05) / 0.05 >= 1.05 / (lum + 0.05)
    return np.where(black, "#000000", "#ffffff").tolist()


def scale_colour(t: float) -> tuple[float, float, float]:
    """The colour of the diverging scale at ``t`` in [0, 1], interpolated in RGB as plotly does."""
    stops = [(p, _hex(c)) for p, c in DIVERGING]
    for (p0, c0), (p1, c1) in zip(stops, stops[1:]):
        if t <= p1:
            w = (t - p0) / (p1 - p0) if p1 > p0 else 0.0
            return tuple(a + (b - a) * w for a, b in zip(c0, c1))
    return stops[-1][1]


def contrast(rgb1, rgb2) -> float:
    """The WCAG 2.1 contrast ratio of two sRGB colours (0–255 channels)."""
    def lum(rgb):
        ch = [c / 255 for c in rgb]
        ch = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in ch]
        return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2]
    hi, lo = sorted((lum(rgb1), lum(rgb2)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _hex(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def legend_below(names: list[str], scale: float = 1.0, width: float = 700, axis_title: bool = True) -> tuple[dict, int]:
    """A horizontal legend at the very bottom of a figure, and the bottom margin that keeps it off the axis.

    Plotly places a legend at a fraction of the plot's height, where it collides with the axis title
    on a short or narrow figure; this counts the legend's lines at ``width`` px instead.
    """
    font = round(FONT["size"] * scale)
    entries = [text_width(n, font) + 50 * scale for n in names]
    lines, used = 1, 0.0
    for w in entries:
        if used and used + w > width - 20:
            lines, used = lines + 1, 0.0
        used += w
    bottom = int(font * (1.8 + (1.9 if axis_title else 0)) + font * 1.9 * lines + 10)
    return dict(orientation="h", yref="container", y=0, yanchor="bottom", x=0, xanchor="left",
                font=dict(size=font)), bottom


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


def _ticks(positions: np.ndarray, cell_px: float = 50, need_px: float = 14) -> dict:
    # every index while they fit; every second, third, ... when the cells are smaller than a label;
    # plotly's own spacing beyond 16
    if len(positions) <= 16:
        every = max(1, math.ceil(need_px / max(cell_px, 1)))
        shown = positions[::every]
        return dict(tickmode="array", tickvals=shown, ticktext=[str(p) for p in shown])
    return dict(tickmode="auto", nticks=12)


def _text_size(shape) -> int:
    side = max(shape)
    return 17 if side <= 6 else 14 if side <= 12 else 11 if side <= 20 else 9

