"""The app's own CSS: WCAG 2.1 AA contrast in both themes, visible focus, and the padding layouts count on.

Streamlit's defaults fall short in a few places (captions at 3.9:1, pills at 4.5:1 only just not,
a focus ring 1.09:1 on the top navigation), and plotly writes its axis text in a fixed grey. Each
rule says why; colours come from the theme's own text colour (``currentColor``, ``inherit``), so
the light and the dark theme both pass without knowing which one is on.
"""
from __future__ import annotations

import streamlit as st

from .screen import PAD_REM

FOCUS = "#c2410c"  # 5.2:1 on white, 3.7:1 on the dark theme's background: a focus ring needs 3:1

CSS = f"""
<style>
  /* the layouts subtract exactly this padding from the main area's width */
  [data-testid="stMainBlockContainer"] {{ padding-left: {PAD_REM}rem; padding-right: {PAD_REM}rem; }}
  /* the page starts under the navigation bar (3.75rem), not 100 px below it (Streamlit's 6rem); Present sets its own */
  [data-testid="stMainBlockContainer"] {{ padding-top: 4rem; }}
  /* captions: the theme's text colour, slightly faded (about 7:1 light, 13:1 dark) instead of 3.9:1 */
  [data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] * {{ color: inherit; }}
  [data-testid="stCaptionContainer"] {{ opacity: 0.85; }}
  [data-testid="stWidgetLabel"] [data-testid="stMarkdownContainer"] p {{ color: inherit; }}
  /* pills and tabs that are selected: text in the text colour, the primary colour only as a frame or bar */
  button[data-selected="true"], button[data-selected="true"] p {{ color: inherit !important; }}
  button[data-selected="true"] {{ border-color: {FOCUS} !important; box-shadow: inset 0 0 0 1px {FOCUS}; }}
  /* a slider's value above its thumb: the primary orange is 3.1:1 on the dark theme's sidebar */
  [data-testid="stSliderThumbValue"], [data-testid="stSliderThumbValue"] p {{ color: inherit !important; font-weight: 600; }}
  /* the shortcut hint on a button (3.9:1 in Streamlit's grey): the button's own text colour */
  button kbd {{ color: inherit !important; opacity: 1 !important; }}
  /* equations are typeset to fit their width (screen.py), so their box never scrolls */
  .katex-display {{ overflow: visible !important; }}
  [data-baseweb="tab"][aria-selected="true"] p {{ color: inherit; }}
  [data-testid="stMetricDelta"] > div {{ filter: brightness(0.85); }}
  /* a visible focus ring on everything that takes focus, the top navigation included */
  a:focus-visible, button:focus-visible, [role="slider"]:focus-visible, [role="tab"]:focus-visible,
  input:focus-visible, [tabindex]:focus-visible, summary:focus-visible {{
    outline: 3px solid {FOCUS} !important; outline-offset: 2px; box-shadow: 0 0 0 5px rgba(255, 255, 255, 0.9);
  }}
  /* plotly's axis, title, legend and colour-bar text in the theme's text colour (its default grey is 3.7:1) */
  .stPlotlyChart .xtick text, .stPlotlyChart .ytick text, .stPlotlyChart .gtitle, .stPlotlyChart .gtitle-subtitle,
  .stPlotlyChart .g-xtitle text,
  .stPlotlyChart .g-ytitle text, .stPlotlyChart .cbaxis text, .stPlotlyChart .legendtext,
  .stPlotlyChart .annotation-text {{ fill: currentColor !important; }}
  /* a metric's comparison line wraps instead of ending in an ellipsis */
  [data-testid="stMetricDelta"], [data-testid="stMetricDelta"] *, [data-testid="stMetricLabel"] * {{
    white-space: normal !important; overflow: visible !important; text-overflow: clip !important; }}
  [data-testid="stMetricDelta"], [data-testid="stMetricDelta"] > * {{
    height: auto !important; max-width: 100% !important; min-width: 0 !important; }}
  /* style-only blocks take no room (each would otherwise add the block's 1rem gap) */
  [data-testid="stElementContainer"]:has(> [data-testid="stHtml"] > style:only-child) {{ display: none; }}
  /* a phone has no hover: a chart's toolbar would sit on its title for good (exports are for wider screens) */
  @media (hover: none) and (max-width: 700px) {{
    .stPlotlyChart .modebar-container, [data-testid="stElementToolbar"]:has(+ * .stPlotlyChart),
    [data-testid="stElementContainer"]:has(.stPlotlyChart) [data-testid="stElementToolbar"] {{ display: none !important; }}
  }}
  /* the screen reporter draws nothing and takes no room */
  .st-key-screen {{ display: none; }}
  /* button labels never cut: a narrow column lets them wrap instead */
  [data-testid="stBaseButton-secondary"] p, [data-testid="stBaseButton-primary"] p {{ white-space: normal; }}
  [data-testid="stBaseButton-secondary"], [data-testid="stBaseButton-primary"] {{ height: auto; min-height: 2.5rem; }}
  /* the Adapters page's uploaders state their own limit: Streamlit rounds 512 MB to "1GB per file" (its size
     format moves to the next unit past half of it, with no decimals) */
  .st-key-ad_upload_1 [data-testid="stFileUploaderDropzoneInstructions"],
  .st-key-ad_upload_2 [data-testid="stFileUploaderDropzoneInstructions"] {{ display: none; }}
</style>
"""


def apply() -> None:
    st.html(CSS)
