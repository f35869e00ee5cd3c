"""The Training page's settings row: widgets in, a validated TrainingConfig (or the reason there is none) out."""
from __future__ import annotations

import streamlit as st

from lora_core import check_hyperparams

from .compute import max_steps_for
from .config import INITS, ExploreConfig, TrainingConfig
from .text import training as text


def settings_row(ex: ExploreConfig) -> None:
    """AdamW's hyperparameters, the init and the target's rank. No widget limits: the server checks."""
    # fixed widths in a row that wraps: on a narrow screen the fields move to a second line instead of
    # shrinking until their numbers are cut
    with st.container(horizontal=True, gap="small", key="training_settings"):
        st.selectbox("Start from", INITS, key="init", format_func=text.INIT_LABELS.get, persist_state="session", width=230)
        st.number_input("r*", step=1, key="rstar", persist_state="session", width=110,
                        help=f"Rank of the hidden update ΔW*, 1…min(d, k) = {min(ex.d, ex.k)}.")
        st.number_input("lr", key="lr", format="%g", step=0.005, persist_state="session", width=120)
        st.number_input("β1", key="beta1", format="%g", step=0.01, persist_state="session", width=120)
        st.number_input("β2", key="beta2", format="%g", step=0.001, persist_state="session", width=120)
        st.number_input("ε", key="eps", format="%g", persist_state="session", width=120)
        st.number_input("weight decay λ", key="wd", format="%g", step=0.01, persist_state="session", width=140)
        st.number_input("steps N", step=50, key="steps", persist_state="session", width=120)


def training_config(ex: ExploreConfig) -> tuple[TrainingConfig | None, str | None]:
    """The config the widgets describe, or None and a message that names what is wrong."""
    ss = st.session_state
    try:
        rstar, steps = int(ss["rstar"]), int(ss["steps"])
        if rstar != ss["rstar"] or steps != ss["steps"]:
            raise ValueError("r* and the number of steps must be whole numbers")
        if not 1 <= rstar <= min(ex.d, ex.k):
            raise ValueError(f"r* = {rstar} must be in 1…min(d, k) = {min(ex.d, ex.k)}")
        check_hyperparams(float(ss["lr"]), (float(ss["beta1"]), float(ss["beta2"])), float(ss["eps"]),
                          float(ss["wd"]), steps)
        cap = max_steps_for(ex.n, ex.d, ex.k, ex.r)
        if steps > cap:
            raise ValueError(f"at n = {ex.n}, d = {ex.d}, k = {ex.k}, r = {ex.r} a run keeps every step's A, B, m and v, so it is "
                             f"capped at {cap} steps; asked for {steps}")
    except (TypeError, ValueError) as err:
        return None, str(err)
    edits = tuple(sorted((i, j, v) for (i, j), v in ss.get("edits", {}).get("T", {}).items()))
    return TrainingConfig(ex, ss["init"], rstar, float(ss["lr"]), float(ss["beta1"]), float(ss["beta2"]),
                          float(ss["eps"]), float(ss["wd"]), steps, edits), None
