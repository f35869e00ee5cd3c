"""The slides' layout engine: a slide's room on the screen it is shown on, spent top to bottom by text, controls and figures."""
from __future__ import annotations

import math
import re

import streamlit as st

from .. import figures
from ..config import ExploreConfig
from ..config.present import FONT_SIZES
from ..text.explore import PRESET_LABELS
from ..widgets import charts
from ..widgets.screen import PAD_REM, Screen

LINE = 1.35        # line height of slide text, in em

FOOTER_REM = 3.9   # the fixed bar with Previous, Next and the slide number

MIN_CHART = 150    # px: a line chart smaller than this is dropped rather than squeezed

ROW_CAPTION = "x" * 80  # as long as charts.matrix_row's caption on rounded or dropped numbers



def eq_height(rows: int, size: float, rem: float) -> float:
    """px of a displayed equation whose tallest matrix has ``rows`` rows, at LaTeX size ``size`` (\\large = 1.2).

    Measured in Chromium: KaTeX's em is 1.21 rem, a matrix row takes 1 em and the display 1.3 em
    more (117 px for a 5-row matrix at \\footnotesize with 19.2 px rem); five per cent of slack.
    """
    return 1.05 * (rows + 1.3) * size * 1.21 * rem



def sizes(scr: Screen, font: str) -> tuple[float, float]:
    """(rem px, figure font scale) for this screen and text size.

    A slide keeps its proportions from a 1024×768 projector to a 4K screen: text is sized from the
    window (the height, or the width when the window is narrow), then by the text-size control.
    """
    unit = min(scr.vh / 1080, scr.vw / 1440)
    rem = max(FONT_SIZES.get(font, FONT_SIZES["L"]) * unit, 11.0)
    return rem, rem / 18



class SlideSpace:
    """What is left of the window as a slide is drawn, in px; every part takes its height from it."""

    def __init__(self, scr: Screen, font: str, title: str):
        self.rem, self.scale = sizes(scr, font)
        self.width = scr.vw - 2 * PAD_REM * self.rem - 8
        self.left = scr.vh - (1.6 + FOOTER_REM) * self.rem  # top padding, the footer, and a line of slack
        self.left -= self._lines(title, 1.5 * self.rem * 0.56) * 1.5 * self.rem * 1.2 + 0.4 * self.rem
        self.notes: list[str] = []

    def _lines(self, words: str, em_px: float, indent: float = 0) -> int:
        plain = re.sub(r"[*_`]", "", words)
        return max(1, math.ceil(len(plain) * em_px * 1.08 / max(self.width - indent, 100)))

    def caption_height(self, words: str) -> float:
        return self._lines(words, 0.53 * 0.875 * self.rem) * 1.5 * 0.875 * self.rem

    def take(self, px: float) -> None:
        self.left -= px + self.rem  # every element is followed by the block's gap of 1rem

    def markdown(self, md: str) -> None:
        st.markdown(md)
        self.take(self.text_height(md))

    def text_height(self, md: str) -> float:
        paras = [p.strip() for p in re.split(r"\n(?=- )|\n\s*\n", md.strip()) if p.strip()]
        h = 0.0
        for p in paras:
            bullet = p.startswith("- ")
            h += self._lines(p, 0.53 * self.rem, 1.6 * self.rem if bullet else 0) * LINE * self.rem + 0.3 * self.rem
        return h

    def controls(self, ex: ExploreConfig) -> None:
        from lora_core import PRESETS
        # widths in rem, so the preset's name is never cut and both scale with the text
        with st.container(horizontal=True, gap="large"):
            st.selectbox("Preset", PRESETS, key="preset", format_func=PRESET_LABELS.get, persist_state="session",
                         width=round(13 * self.rem))
            st.slider("r: LoRA rank", 1, max(min(ex.d, ex.k), 2), key="r", disabled=min(ex.d, ex.k) < 2,
                      persist_state="session", width=round(min(18 * self.rem, self.width - 15 * self.rem)))
        self.take(4.6 * self.rem)

    def latex(self, tex: str, rows: int = 1, size: float = 1.2) -> None:
        """An equation; ``rows`` is its tallest matrix (1 for a plain line). The app's script fits its width."""
        st.latex(tex)
        self.take(eq_height(rows, size, self.rem))

    def metrics(self, n_lines: int = 1) -> None:
        self.take((5.4 + 1.3 * (n_lines - 1)) * self.rem)

    def table(self, rows: int) -> None:
        self.take((rows + 1) * 1.95 * self.rem)  # measured: 1.87 rem a row of st.table

    def cell(self, items, share: float = 1.0) -> tuple[int, int]:
        """(the cell px a row would get with ``share`` of the height left, the px at which its numbers print in full)."""
        height = max((self.left - self.caption_height(ROW_CAPTION)) * share * 0.97, 40)
        cap = round(110 * self.scale)
        cell = figures.row_layout(items, self.width, height, self.scale, gap=self.rem, cell_max=cap).cell
        full = max(figures.natural_cell(M, kw.get("decimals"), kw.get("text_size"), self.scale) for M, _, kw in items)
        return cell, full

    def row(self, items, key: str, share: float = 1.0) -> None:
        """Matrices side by side at one cell size, using ``share`` of the height still left.

        A line is kept free under the row for the caption that says when numbers were rounded or dropped.
        """
        self.left -= self.caption_height(ROW_CAPTION)
        height = max(self.left * share * 0.97, 40)
        charts.matrix_row(items, key, width=self.width, height=height, scale=self.scale, rem=self.rem,
                      cell_max=round(110 * self.scale))
        self.left -= height + self.rem

    def chart_height(self, wanted: float) -> int | None:
        """The height a line or bar chart may take (all that is left, up to ``wanted``), or None if too little."""
        h = min(self.left * 0.97 - self.rem, wanted * self.scale)
        if h < MIN_CHART * max(self.scale, 1):
            return None
        self.left -= h + self.rem
        return int(h)
