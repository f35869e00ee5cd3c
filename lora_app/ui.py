"""Streamlit helpers shared by the pages: URL state, the sidebar controls and the matrix editors."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from lora_core import PRESETS

from . import figures, guard, screen
from .figures.base import FigureSpec
from .figures.heatmap import matrix_heatmap_spec

from .config import (
    ALPHA_MAX, ALPHA_MIN, ALPHA_STEP, DIM_CHOICES, MATRIX_LABELS, SEED_MAX, URL_KEYS, ExploreConfig,
    CELL_TEXT_MAX, _as_int, parse_cell, quoted, sanitize,
)
from .echo import echo

PRESET_LABELS = {
    "seed": "the blog's example",
    "random": "random numbers",
    "peft": "PEFT default (B = 0)",
    "gaussian": "Gaussian A, B = 0",
}
EDITABLE_MAX_SIDE = 64  # a table editor beyond this is no way to change numbers
EXPORT_FORMATS = ("png", "svg")
EXPORT_WIDTH, EXPORT_SCALE = 1600, 2  # PNGs at 3200 px wide: sharp on a 4K projector or a printed page


def entry_guard() -> None:
    """Make sure the page runs inside app.py, and not on its own.

    Streamlit keeps a pages-directory mode for old apps with a ``pages/`` folder: until some session
    has called ``st.navigation``, a server's very first request for /training would run
    pages/training.py alone, without app.py's shared state. Switch that mode off and rerun: the
    page's URL path gives it the same hash in both modes, so the rerun lands on the same page.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


def load_url_state() -> None:
    """On a session's first run, take the controls from the URL; later runs keep the session's own state."""
    if st.session_state.get("_url_loaded"):
        return
    values, notices = sanitize(st.query_params.to_dict())
    st.session_state.update(values)
    st.session_state["_url_loaded"] = True
    st.session_state["_notices"] = notices


def validate_controls() -> None:
    # widget limits live in the browser; a tampered message or a shrunken d can still bring bad values
    current = {key: st.session_state[key] for key in URL_KEYS if key in st.session_state}
    values, notices = sanitize(current)
    for key, value in values.items():
        if st.session_state.get(key) != value:
            st.session_state[key] = value
    if notices:
        st.session_state["_notices"] = st.session_state.get("_notices", []) + notices


def sidebar_controls() -> None:
    """The example's controls. Keys equal the URL parameter names."""
    validate_controls()
    sb = st.sidebar
    sb.selectbox("Preset", PRESETS, key="preset", persist_state="session", format_func=PRESET_LABELS.get,
                 help="Which numbers fill the matrices. The blog's example keeps its numbers in the top-left corner.")
    sb.number_input("Seed", min_value=0, max_value=SEED_MAX, step=1, key="seed", persist_state="session",
                    help="Seeds the numbers of every cell the blog does not give.")
    sb.slider("n: tokens (rows of X)", 1, 64, key="n", persist_state="session")
    sb.select_slider("d: input width (rows of W_Q)", DIM_CHOICES, key="d", persist_state="session")
    sb.select_slider("k: output width (columns of W_Q)", DIM_CHOICES, key="k", persist_state="session")
    r_max = min(st.session_state["d"], st.session_state["k"])
    if r_max > 1:
        sb.slider("r: LoRA rank", 1, r_max, key="r", persist_state="session", help="Columns of A_Q and rows of B_Q; at most min(d, k).")
    else:
        st.session_state["r"] = 1
        sb.markdown("**r: LoRA rank** = 1 (the only rank when d or k is 1)")
    sb.slider("α: LoRA alpha", ALPHA_MIN, ALPHA_MAX, step=ALPHA_STEP, key="alpha", persist_state="session",
              help="The adapter's output is scaled by s = α/r. The blog's equation has no scale, so α = r = 2.")
    sb.toggle("rsLoRA: s = α/√r", key="rslora", persist_state="session", help="Rank-stabilised LoRA divides by √r instead of r.")
    sb.caption(f"s = α/{'√r' if st.session_state['rslora'] else 'r'} = {current_config().scaling:.4g}")
    sb.segmented_control("Figure downloads", EXPORT_FORMATS, key="export", persist_state="session", format_func=str.upper,
                         default="png", help="The camera icon on each figure saves it in this format, "
                                             f"{EXPORT_WIDTH * EXPORT_SCALE} px wide for PNG.")


def current_config() -> ExploreConfig:
    values = {key: st.session_state[key] for key in URL_KEYS}
    edits = tuple(sorted(
        (name, i, j, v) for name, cells in st.session_state.get("edits", {}).items() if name in MATRIX_LABELS
        for (i, j), v in cells.items()
    ))
    return ExploreConfig(**values, edits=edits)


def page_state(page: str, sanitize_page) -> None:
    """Seed a page's own widget keys from the URL on the session's first visit to that page.

    ``sanitize_page(raw) -> (values, notices)`` validates the page's keys like :func:`sanitize`;
    later visits keep the session's values (the widgets persist them across page switches).
    """
    loaded = f"_url_loaded_{page}"
    if st.session_state.get(loaded):
        return
    values, notices = sanitize_page(st.query_params.to_dict())
    st.session_state.update(values)
    st.session_state[loaded] = True
    st.session_state["_notices"] = st.session_state.get("_notices", []) + notices


def set_page_url(params: dict[str, str]) -> None:
    """Add the current page's own URL parameters; app.py writes them after the shared ones."""
    st.session_state.setdefault("_page_url", {}).update(params)


def sections(page: str, labels: dict[str, str]):
    """The page's parts as tabs of which only the open one runs; returns (slug, its container).

    A slider then redraws only the figures in view, not every figure of the page (each redrawn
    plotly figure costs the browser about 40 ms). The open part is the URL's ``view``, so a link
    reopens it; an unknown ``view`` gets a notice and the first part.
    """
    key, slugs = f"view_{page}", list(labels)
    names = {label: slug for slug, label in labels.items()}
    loaded = f"_url_loaded_view_{page}"
    warning = f"_view_warning_{page}"
    if not st.session_state.get(loaded):
        raw = st.query_params.get("view")
        st.session_state[warning] = None
        if raw is not None and raw not in labels:
            st.session_state[warning] = (f"{quoted('view', raw)} is not a part of this page (choose from "
                                         f"{', '.join(slugs)}); showing {slugs[0]}.")
            st.warning(st.session_state[warning], icon=":material/warning:")
        st.session_state[key] = labels.get(raw, labels[slugs[0]])
        st.session_state[loaded] = True
    elif st.session_state.get(warning) and screen.is_screen_rerun():
        st.warning(st.session_state[warning], icon=":material/warning:")  # still there after the size report
    elif st.session_state.get(key) not in names:
        st.session_state[key] = labels[slugs[0]]
    tabs = st.tabs(list(labels.values()), key=key, on_change="rerun")
    slug = names[st.session_state[key]]
    set_page_url({"view": slug})
    return slug, tabs[slugs.index(slug)]


def open_section(page: str, labels: dict[str, str], slug: str) -> None:
    """Switch the page to one of its parts (from a callback: before the tabs are drawn)."""
    st.session_state[f"view_{page}"] = labels[slug]


def write_url(cfg: ExploreConfig, shared: bool = True) -> None:
    """The URL: the shared example's parameters (unless the page does not use them), then the page's own."""
    wanted = {**(cfg.url_params() if shared else {}), **st.session_state.pop("_page_url", {})}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


def show_notices() -> None:
    """Say what was clamped or ignored, at the top of the page, until the user next acts.

    The rerun that follows the browser's report of its size (screen.py) is not the user acting:
    it shows the same notices again, or they would be gone a tenth of a second after the page opened.
    """
    notices = st.session_state.pop("_notices", []) + [
        f"The control {echo(name, 40)} sent a value this page cannot read; it was ignored, and the control "
        "keeps its last value." for name in guard.take_refusals(st.session_state)]
    if screen.is_screen_rerun():
        notices = st.session_state.get("_shown_notices", []) + notices
    st.session_state["_shown_notices"] = notices
    for notice in notices:
        st.warning(notice, icon=":material/warning:")


# --- figures ---------------------------------------------------------------------------------

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
    return where.plotly_chart(_Prebuilt.of(spec) if spec else fig, key=key, config=config, **kwargs)


class _Prebuilt(go.Figure):
    """What st.plotly_chart takes for a go.Figure (it calls only ``to_dict``), from a FigureSpec: no go.Figure is built."""

    @classmethod
    def of(cls, spec: FigureSpec) -> "_Prebuilt":
        obj = object.__new__(cls)  # plotly's own __init__ is the cost this skips
        object.__setattr__(obj, "_spec", spec)
        return obj

    def __init__(self, *args, **kwargs):  # pragma: no cover - only made through of()
        raise TypeError("use _Prebuilt.of(spec)")

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


def share_link() -> None:
    """The current view as a link, with the code block's own copy button."""
    base = st.context.url or ""
    query = "&".join(f"{k}={v}" for k, v in st.query_params.to_dict().items())
    st.sidebar.caption("Share this view: the link reopens exactly these settings.")
    st.sidebar.code(f"{base}?{query}" if query else base, language=None, wrap_lines=True)


# --- editable matrices ---------------------------------------------------------------------

def _editor_key(name: str) -> str:
    return f"edit_{name}_{st.session_state.setdefault('editor_version', {}).get(name, 0)}"


def _edited_cells(delta, shape: tuple[int, int], label: str) -> tuple[list[tuple[int, int, object]], list[str]]:
    """The (row, column, raw value) cells of a table editor's change, or the reason it cannot be read.

    The editor's message comes from the browser, so it is checked like any other input: a forged one
    may name a row or column the table does not have, a negative row, or be no mapping at all.
    Nothing of a change is applied unless all of it can be read.
    """
    rows, cols = shape
    unreadable = f"the {label} table sent a change that could not be read ({{}}); nothing was changed."
    if not isinstance(delta, dict) or not isinstance(delta.get("edited_rows", {}), dict):
        return [], [unreadable.format("not a table edit")]
    if delta.get("added_rows") or delta.get("deleted_rows"):
        return [], [unreadable.format(f"rows added or deleted, but {label} is always {rows}×{cols}")]
    cells = []
    for row, changes in delta.get("edited_rows", {}).items():
        i = _index(row, rows)
        if i is None:
            return [], [unreadable.format(f"row {echo(row, 12)} is not a row 1…{rows}")]
        if not isinstance(changes, dict):
            return [], [unreadable.format(f"row {i + 1} holds no cells")]
        for col, raw in changes.items():
            j = _index(col, cols, first=1)
            if j is None:
                return [], [unreadable.format(f"column {echo(col, 12)} is not a column 1…{cols}")]
            cells.append((i, j, raw))
    return cells, []


def _index(raw, size: int, first: int = 0) -> int | None:
    """A row or column name from the editor (0-based rows, columns named "1"…) as a 0-based index, if valid."""
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        return None
    text = str(raw).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 6:  # no sign, no "1e3", no "١"
        return None
    index = int(text) - first
    return index if 0 <= index < size else None


def apply_pending_edits(labels: dict[str, str] = MATRIX_LABELS) -> None:
    """Fold the table editors' pending changes into ``edits``; refuse bad cells by name and keep the old value.

    This runs before the config is built, so a good edit shows in every figure in the same run.
    """
    edits = st.session_state.setdefault("edits", {})
    shapes = st.session_state.setdefault("_editor_shapes", {})
    errors, processed = [], False
    for name, label in labels.items():
        key = _editor_key(name)
        delta = st.session_state.get(key)
        if delta is None or key not in shapes:
            continue
        if isinstance(delta, dict) and not any(delta.get(part) for part in ("edited_rows", "added_rows", "deleted_rows")):
            continue
        cells, problems = _edited_cells(delta, shapes[key], label)
        errors += problems
        for i, j, raw in cells:
            try:
                edits.setdefault(name, {})[(i, j)] = parse_cell(raw)
            except ValueError as err:
                errors.append(f"{label}[{i + 1}, {j + 1}] {err}; the cell keeps its last valid value.")
        # a fresh editor shows the matrix as it now is, bad cells restored
        st.session_state["editor_version"][name] = st.session_state["editor_version"].get(name, 0) + 1
        del st.session_state[key]
        processed = True
    if processed:
        # what was refused stays on screen until the next edit: the reruns that follow (the fresh table
        # registering, the window's size report) are not the user acting
        st.session_state["edit_errors"] = {**st.session_state.get("edit_errors", {}),
                                           **{name: errors for name in labels}}


def cell_text(v: float) -> str:
    """An entry as its table shows it: the shortest text that reads back as exactly this float."""
    v = float(v)
    return "0" if v == 0 else repr(v)


def number_table(M: np.ndarray, key: str, label: str) -> None:
    """An editable table of ``M``'s entries as text, read back on the server by :func:`parse_cell`.

    Streamlit's number editor drops the letter e, so "1e3" typed in it would arrive as 13; a text
    cell keeps what was typed, and the server reads "1e3", "-2.5e-4" and "1E6" as the numbers they are.
    """
    frame = pd.DataFrame([[cell_text(v) for v in row] for row in np.asarray(M)],
                         columns=[str(j + 1) for j in range(M.shape[1])],
                         index=[str(i + 1) for i in range(M.shape[0])])
    st.session_state.setdefault("_editor_shapes", {})[key] = M.shape
    st.data_editor(frame, key=key, num_rows="fixed",
                   column_config={c: st.column_config.TextColumn(c, required=True, max_chars=CELL_TEXT_MAX)
                                  for c in frame.columns})


def matrix_editors(matrices: dict[str, np.ndarray], labels: dict[str, str] = MATRIX_LABELS,
                   max_side: int = EDITABLE_MAX_SIDE) -> None:
    """One table per matrix; a changed cell reaches every figure, a bad one is refused by name."""
    shown = st.session_state.get("edit_errors", {})
    for err in dict.fromkeys(e for name in matrices for e in shown.get(name, [])):
        st.error(err, icon=":material/block:")
    edits = st.session_state.get("edits", {})
    count = sum(len(cells) for name, cells in edits.items() if name in matrices)
    tabs = st.tabs([labels[name] for name in matrices])
    for tab, (name, M) in zip(tabs, matrices.items()):
        with tab:
            if max(M.shape) > max_side:
                st.info(f"{labels[name]} is {M.shape[0]}×{M.shape[1]}; tables are offered up to "
                        f"{max_side} on a side. Make d, k or n smaller to edit it.")
                continue
            number_table(M, _editor_key(name), labels[name])
            frame = pd.DataFrame(M, columns=[str(j + 1) for j in range(M.shape[1])],
                                 index=[str(i + 1) for i in range(M.shape[0])])
            st.download_button(f"Download {labels[name]} as CSV", frame.to_csv(float_format="%.17g"),
                               file_name=re.sub(r"[^\w.-]+", "_", labels[name]).strip("_") + ".csv", mime="text/csv", key=f"csv_{name}",
                               icon=":material/download:")
    cols = st.columns([3, 1])
    cols[0].caption(f"{count} edited cell{'s' if count != 1 else ''}. Edits stay when n, d, k or r change; "
                    "type numbers such as 0.25, -1.5e-3 or 2E4, finite and within ±1e6.")
    if cols[1].button("Reset edits", disabled=count == 0, key=f"reset_edits_{'_'.join(matrices)}"):
        st.session_state["edits"] = {name: cells for name, cells in edits.items() if name not in matrices}
        st.session_state["edit_errors"] = {n: e for n, e in shown.items() if n not in matrices}
        st.session_state["editor_version"] = {n: v + 1 for n, v in st.session_state["editor_version"].items()}
        st.rerun()


# --- one cell of Q ---------------------------------------------------------------------------

def picked_cell(cfg: ExploreConfig) -> tuple[int, int]:
    """The chosen cell of Q, 0-based, clamped to the current n×k (the inputs show it from 1).

    The inputs' limits live in the browser, so a forged value (inf, text, 10¹⁵) is checked here:
    it is clamped when it is a whole number and otherwise replaced by the last good cell.
    """
    ss = st.session_state
    good = ss.get("_good_cell", (1, 1))
    picked = []
    for key, size, last in (("cell_i", cfg.n, good[0]), ("cell_j", cfg.k, good[1])):
        try:
            value = _as_int(ss.get(key, last))
        except (TypeError, ValueError, OverflowError):
            st.warning(f"{quoted(key, ss.get(key))} is not a whole number; keeping {key}={last}.",
                       icon=":material/warning:")
            value = last
        picked.append(min(max(value, 1), size))
    ss["cell_i"], ss["cell_j"] = picked
    ss["_good_cell"] = tuple(picked)
    return picked[0] - 1, picked[1] - 1


def cell_click(key: str, then=None):
    """A callback for the Q heatmap ``key``: a click picks that cell (the markers carry 1-based x, y).

    ``then()`` runs after a pick (the Explore page opens the cell's breakdown).
    """
    def pick() -> None:
        points = (st.session_state.get(key) or {}).get("selection", {}).get("points", [])
        if points and "x" in points[0] and "y" in points[0]:
            st.session_state["cell_i"], st.session_state["cell_j"] = int(points[0]["y"]), int(points[0]["x"])
            if then is not None:
                then()
    return pick


def cell_inputs(cfg: ExploreConfig) -> None:
    cols = st.columns(4)
    cols[0].number_input("row i of Q", 1, cfg.n, step=1, key="cell_i")
    cols[1].number_input("column j of Q", 1, cfg.k, step=1, key="cell_j")


def counts_sentence(cfg: ExploreConfig, c) -> str:
    if c.lora_is_smaller:
        return (f"At the current size, {cfg.d}×{cfg.k} with r = {cfg.r}, LoRA trains **{c.lora:,}** numbers instead "
                f"of **{c.full:,}**: {c.lora / c.full:.1%} of full fine-tuning.")
    return (f"At the current size, {cfg.d}×{cfg.k} with r = {cfg.r}, LoRA trains **{c.lora:,}** numbers, "
            f"not fewer than full fine-tuning's **{c.full:,}**: r is at or above the break-even rank "
            f"{c.break_even:.3g}. Make d and k larger, or r smaller, to see the saving.")
