"""Editable matrices: a text table per matrix, read back on the server, a bad cell refused by name."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import streamlit as st

from ..config import (
    CELL_TEXT_MAX,
    MATRIX_LABELS,
    parse_cell,
)
from ..echo import echo
from . import notices

EDITABLE_MAX_SIDE = 64  # a table editor beyond this is no way to change numbers



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

    This runs before the config is built, so a good edit shows in every figure in the same run. It
    runs before the page's notices decide whether the user acted (notices.show), and the table's own
    change is gone by then: so ``edits`` is replaced, never changed in place, for the change to be seen
    (a cell typed right after a refused one left the refusal on screen).
    """
    st.session_state.setdefault("edits", {})
    edits = {name: dict(cells) for name, cells in st.session_state["edits"].items()}
    shapes = st.session_state.setdefault("_editor_shapes", {})
    for name, label in labels.items():
        key = _editor_key(name)
        delta = st.session_state.get(key)
        if delta is None or key not in shapes:
            continue
        if isinstance(delta, dict) and not any(delta.get(part) for part in ("edited_rows", "added_rows", "deleted_rows")):
            continue
        cells, problems = _edited_cells(delta, shapes[key], label)
        for problem in problems:
            _refused(problem)
        for i, j, raw in cells:
            try:
                edits.setdefault(name, {})[(i, j)] = parse_cell(raw)
            except ValueError as err:
                _refused(f"{label}[{i + 1}, {j + 1}] {err}; the cell keeps its last valid value.")
        # a fresh editor shows the matrix as it now is, bad cells restored
        st.session_state["editor_version"][name] = st.session_state["editor_version"].get(name, 0) + 1
        del st.session_state[key]
        st.session_state["edits"] = edits



def _refused(message: str) -> None:
    notices.add(message, kind="error", place=notices.EDITS)  # drawn above the tables (matrix_editors)



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
    notices.draw(notices.EDITS)  # what an edit had refused, until the user acts (the reruns that follow are not)
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
                               file_name=re.sub(r"[^\w.-]+", "_", labels[name]).strip("_") + ".csv", mime="text/csv",
                               key=f"csv_{name}",
                               icon=":material/download:")
    cols = st.columns([3, 1])
    cols[0].caption(f"{count} edited cell{'s' if count != 1 else ''}. Edits stay when n, d, k or r change; "
                    "type numbers such as 0.25, -1.5e-3 or 2E4, finite and within ±1e6.")
    if cols[1].button("Reset edits", disabled=count == 0, key=f"reset_edits_{'_'.join(matrices)}"):
        st.session_state["edits"] = {name: cells for name, cells in edits.items() if name not in matrices}
        st.session_state["editor_version"] = {n: v + 1 for n, v in st.session_state["editor_version"].items()}
        st.rerun()
