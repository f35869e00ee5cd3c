"""Sizes: how wide a text is, the cell at which a matrix's numbers fit, and one cell size for a row of matrices.

Pure arithmetic on shapes, formats and fonts, so pages and slides lay out the same way: ``row_layout``
gives a row its cell size and its lines, ``heatmap_frame`` the margins around one matrix's cells.
"""
from __future__ import annotations

import itertools
import math
import re
from typing import NamedTuple

import numpy as np

from .base import DISPLAY_MAX_SIDE, FONT, TEXT_MAX_SIDE, cell_font_size, role_subtitle, shape_label, value_format

NUMBER_FONT_MIN = 11  # px at scale 1: a smaller printed number is not worth reading; hover instead
CELL_PAD = 8          # px of a cell left around its number
MIN_FIGURE_PX = 160   # Streamlit widens a narrower chart in a row (and its cells with it): never go below


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
        widest = max(text_width(format_value(v, f), 1) for v in _widest(M, f))
        size = min(font, (cell_px - CELL_PAD) / widest, (cell_px - 4) / 1.3)
        if size >= least:
            return f, int(size)
    return None


def fit_labels(labels, cell_px: int, font: int, scale: float = 1.0) -> tuple[str, int] | None:
    """("labels", font size) at which every label (a short text per cell) fits a ``cell_px`` cell, or None."""
    least = min(round(NUMBER_FONT_MIN * max(scale, 1.0)), font)
    widest = max((text_width(str(t), 1) for t in np.asarray(labels).ravel()), default=1.0) or 1.0
    size = min(font, (cell_px - CELL_PAD) / widest, (cell_px - 4) / 1.3)
    return ("labels", int(size)) if size >= least else None


def natural_cell(M: np.ndarray, decimals: int | None = None, text_size: int | None = None, scale: float = 1.0) -> int:
    """The cell side at which ``M``'s numbers print at their full size (the size pages prefer)."""
    font = round((text_size or cell_font_size(M.shape)) * scale)
    M = finite_values(M)
    fmt = value_format(M, decimals)
    widest = max(text_width(format_value(v, fmt), font) for v in _widest(M, fmt)) if M.size else font
    return int(max(round(46 * scale), widest + CELL_PAD + 6))


def roomy_cell(shape, text_size: int | None = None, scale: float = 1.0) -> int:
    """A cell that holds "−0.000" at the matrix's full text size: the size a page's row aims for.

    It depends on the shape only, not on the numbers, so a row keeps its cell size (and the browser
    keeps its figures) while r changes the numbers of A_Q and B_Q.
    """
    font = round((text_size or cell_font_size(shape)) * scale)
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
    return Frame(left, right, top, bottom, max(title_width(title, sub, title_font), MIN_FIGURE_PX), tick, title_font)


def title_width(title: str, subtitle: str | None, title_font: int) -> int:
    """px a figure needs for its title and, below it, its subtitle at three quarters of the title's size."""
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
    lines whose cells reach 70% of the cap win, with one the largest cell. On each number of lines,
    titles stay whole unless breaking the long ones (the shape moves under the title) is what fits.
    """
    specs = {False: [], True: []}
    for M, title, kw in items:
        rows, cols, b = display_shape(np.shape(M))
        can_print = b == 1 and max(np.shape(M)) <= TEXT_MAX_SIDE
        sub = role_subtitle(kw.get("role"), b, can_print)
        frame = heatmap_frame(M, title, sub, kw.get("show_scale", False), scale, kw.get("axis_titles"))
        roomy = roomy_cell(np.shape(M), kw.get("text_size"), scale)
        one_line = max(title_width(f"{title} {shape_label(np.shape(M))}", sub, frame.title_font), MIN_FIGURE_PX)
        specs[True].append((rows, cols, frame, roomy))
        specs[False].append((rows, cols, frame._replace(min_width=one_line), roomy))
    cap = cell_max or max(s[3] for s in specs[False])
    enough = cap if height is not None else int(0.7 * cap)  # a page would rather shrink cells a little than wrap
    best, best_key = None, None
    for count in range(1, len(items) + 1):  # fewer lines first
        for lines in _partitions(len(items), count):
            for breaking in (False, True):
                c = _largest_cell(specs[breaking], lines, width, height, gap, cap, cell_min)
                # the larger cell; then whole titles; then lines of even length
                key = (c, not breaking, -(max(map(len, lines)) - min(map(len, lines))))
                if best_key is None or key > best_key:
                    best, best_key = RowLayout(c, lines, breaking), key
        if best.cell >= enough:
            return best
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


def _partitions(n: int, k: int):
    """Every split of n items, in order, into k consecutive lines."""
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


def finite_values(M: np.ndarray) -> np.ndarray:
    """M's finite entries as a flat float array (one 0 when it has none), for sizing its printed numbers."""
    F = np.asarray(M, dtype=float)
    F = F[np.isfinite(F)]
    return F if F.size else np.zeros(1)


WIDEST_ALL = 20_000  # a screen holds fewer printed cells than this: up to it, every label is measured


def _widest(M: np.ndarray, fmt: str) -> np.ndarray:
    """The values whose labels may be the widest: with ".3f", the minimum, the maximum and the two largest in size.

    With ".2~e" trailing zeros are trimmed, so any value may print the longest label ("−5.28e−5" is wider
    than the larger "−9.4e−5"): every value is measured, as far as a screen could print them.
    """
    flat = M.ravel()
    if not flat.size or (fmt.endswith("e") and flat.size <= WIDEST_ALL):
        return flat
    return np.concatenate([[flat.min(), flat.max()], flat[np.argsort(-np.abs(flat))[:2]]])


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
