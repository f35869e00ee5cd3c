"""The shared sidebar: the toy example's controls (preset, seed, n, d, k, r, α, rsLoRA) and the figure format."""
from __future__ import annotations

import streamlit as st

from lora_core import PRESETS

from .. import text
from ..config import (
    ALPHA_MAX,
    ALPHA_MIN,
    ALPHA_STEP,
    DIM_CHOICES,
    SEED_MAX,
)
from .charts import EXPORT_FORMATS, EXPORT_SCALE, EXPORT_WIDTH
from .url_state import current_config, validate_controls


def sidebar_controls() -> None:
    """The example's controls. Keys equal the URL parameter names."""
    validate_controls()
    sb = st.sidebar
    sb.selectbox("Preset", PRESETS, key="preset", persist_state="session", format_func=text.PRESET_LABELS.get,
                 help="Which numbers fill the matrices. The blog's example keeps its numbers in the top-left corner.")
    sb.number_input("Seed", min_value=0, max_value=SEED_MAX, step=1, key="seed", persist_state="session",
                    help="Seeds the numbers of every cell the blog does not give.")
    sb.slider("n: tokens (rows of X)", 1, 64, key="n", persist_state="session")
    sb.select_slider("d: input width (rows of W_Q)", DIM_CHOICES, key="d", persist_state="session")
    sb.select_slider("k: output width (columns of W_Q)", DIM_CHOICES, key="k", persist_state="session")
    r_max = min(st.session_state["d"], st.session_state["k"])
    if r_max > 1:
        sb.slider("r: LoRA rank", 1, r_max, key="r", persist_state="session",
                  help="Columns of A_Q and rows of B_Q; at most min(d, k).")
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
