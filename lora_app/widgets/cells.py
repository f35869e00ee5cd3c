"""One cell of Q: picked by a click or a tap on its heatmap, or by two number inputs."""
from __future__ import annotations

import streamlit as st

from ..config import (
    ExploreConfig,
    quoted,
)
from ..config.fields import as_int
from . import notices


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
            value = as_int(ss.get(key, last))
        except (TypeError, ValueError, OverflowError):
            notices.add(f"{quoted(key, ss.get(key))} is not a whole number; keeping {key}={last}.")
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
