"""Drawing figures: one chart with its PNG/SVG export, a row of matrices at one cell size, metric rows."""
from __future__ import annotations

import re

import plotly.graph_objects as go
import streamlit as st

from .. import figures
from ..figures.base import FigureSpec
from ..figures.heatmap import matrix_heatmap_spec
from . import screen

EXPORT_FORMATS = ("png", "svg")

EXPORT_WIDTH, EXPORT_SCALE = 1600, 2  # PNGs at 3200 px wide: sharp on a 4K projector or a printed page



def chart(where, fig, key: str, **kwargs):
    """Draw a figure; its camera button downloads it as PNG or SVG (the sidebar's choice) at slide size.

    The export is plotly's own toImage in the browser: no server-side renderer is involved.
    ``fig`` is a go.Figure or a FigureSpec (a heatmap's dicts: its chart JSON is the same, without the
    go.Figure's cost).
    """
    fmt = st.session_state.get("export", "png")
    spec = fig if isinstance(fig, FigureSpec) else None
    title = ((spec.title if spec else fig.layout.title.text) or key).split("<br>")[0]
    filename = re.sub(r"\W+", "_", title).strip("_")[:60] or key
    config = {
        "displaylogo": False,
        "modeBarButtonsToRemove": ["zoom2d", "pan2d", "select2d", "lasso2d", "zoomIn2d", "zoomOut2d",
                                   "autoScale2d", "resetScale2d"],
        "toImageButtonOptions": {"format": fmt if fmt in EXPORT_FORMATS else "png", "filename": filename,
                                 "width": EXPORT_WIDTH, "height": (spec.height if spec else fig.layout.height) or 500,
                                 "scale": EXPORT_SCALE},
    }
    return where.plotly_chart(Prebuilt.of(spec) if spec else fig, key=key, config=config, **kwargs)



class Prebuilt(go.Figure):
    """What st.plotly_chart takes for a go.Figure (it calls only ``to_dict``), from a FigureSpec: no go.Figure is built."""

    @classmethod
    def of(cls, spec: FigureSpec) -> Prebuilt:
        obj = object.__new__(cls)  # plotly's own __init__ is the cost this skips
        object.__setattr__(obj, "_spec", spec)
        return obj

    def __init__(self, *args, **kwargs):  # pragma: no cover - only made through of()
        raise TypeError("use Prebuilt.of(spec)")

    def to_dict(self) -> dict:
        return object.__getattribute__(self, "_spec").to_dict()



def matrix_row(items, keys, *, where=None, width: float | None = None, height: float | None = None,
               scale: float = 1.0, rem: float = 16.0, cell_max: int | None = None, chart_kw=None) -> int:
    """Matrices side by side, all at one cell size, wrapped onto lines when the screen is narrow.

    ``items`` are (matrix, title, heatmap kwargs); ``keys`` a key per item, or a prefix.
    The cell size comes from the screen the browser reported (``width`` and ``height``
    override it, for slides); a thin d×r matrix is then drawn thin and a flat r×k one flat.
    When the cells are too small for every decimal, a caption says what was rounded or dropped.
    ``chart_kw(i)`` adds plotly_chart arguments for item i (a click handler). Returns the cell px.
    """
    where = where or st
    keys = keys if isinstance(keys, (list, tuple)) else [f"{keys}_{i}" for i in range(len(items))]
    width = width or screen.current().content_width(rem)
    cell, lines, break_titles = figures.row_layout(items, width, height, scale, gap=rem, cell_max=cell_max)
    notes = set()
    for line in lines:
        box = where.container(horizontal=True, gap="small", key=f"row_{keys[line[0]]}")
        for i in line:
            M, title, kw = items[i]
            fig = matrix_heatmap_spec(M, title, cell_px=cell, scale=scale, break_title=break_titles, **kw)
            chart(box, fig, key=keys[i], width="content", **(chart_kw(i) if chart_kw else {}))
            if figures.numbers_note(fig):
                notes.add(figures.numbers_note(fig))
    if "dropped" in notes:
        where.caption("Some cells are too small here for numbers: hover or tap a cell to read it.")
    elif notes:
        where.caption(f"Numbers {sorted(notes)[0]} to fit their cells: hover or tap a cell for its exact value.")
    return cell



def metric_row(n: int, width: int = 250) -> list:
    """``n`` places for metrics, side by side while they fit and wrapped onto lines when not (never squeezed)."""
    row = st.container(horizontal=True, gap="medium")
    return [row.container(width=width) for _ in range(n)]



def column_width(share: float) -> float:
    """The width of a column taking ``share`` of the main area; below 640 px Streamlit stacks columns."""
    scr = screen.current()
    width = scr.content_width()
    return width if scr.vw < 640 else width * share - 16
