"""The Training page's settings row: widgets in, a validated TrainingConfig (or the reason there is none) out.

Every value of r*, lr, β1, β2, ε, λ and the number of steps, typed in a widget or sent in a forged
widget message, passes :func:`lora_app.config.training.check_setting` (the same check as the URL's)
before the widgets are drawn. A refused value is named with what was sent, and the widget goes
back to the last good value, which the run then uses.
"""
from __future__ import annotations

import streamlit as st

from lora_core import check_hyperparams

from ..compute import max_steps_for
from ..config import INITS, TRAINING_DEFAULTS, ExploreConfig, TrainingConfig
from ..config.fields import format_value
from ..config.training import SETTING_LABELS, check_setting
from ..echo import quoted
from ..text import training as text

GOOD_KEY = "_training_good"        # the last values of the settings that passed the check
PROBLEMS_KEY = "_training_refused"  # this run's messages about refused values


def validate_settings(ex: ExploreConfig) -> list[str]:
    """Check every setting in session state; put the last good value back where one is refused.

    Runs before the widgets exist, so the widgets show the value the run uses. Returns the messages.
    """
    ss, r_max = st.session_state, min(ex.d, ex.k)
    good = dict(ss.get(GOOD_KEY) or {})
    messages = []
    for key, label in SETTING_LABELS.items():
        fallback = good.get(key, TRAINING_DEFAULTS[key])
        if key == "rstar":
            fallback = min(max(int(fallback), 1), r_max)  # a smaller d or k since it was good
        raw = ss.get(key, fallback)
        value, why = check_setting(key, raw, r_max)
        if why is None:
            good[key] = value
            if raw is not value and type(raw) is not type(value):
                ss[key] = value  # 3.0 for r* becomes 3, so the widget keeps its type
            continue
        messages.append(f"{quoted(label, raw)} {why}; using the last good value, {quoted(label, format_value(fallback))}.")
        good[key] = ss[key] = fallback
    ss[GOOD_KEY] = good
    if ss.get("init") not in INITS:
        messages.append(f"{quoted('Start from', ss.get('init'))} is not an initialisation; using “{TRAINING_DEFAULTS['init']}”.")
        ss["init"] = TRAINING_DEFAULTS["init"]
    return messages


def settings_row(ex: ExploreConfig) -> list[str]:
    """AdamW's hyperparameters, the init and the target's rank. No widget limits: the server checks.

    Returns the messages about values that were refused (see :func:`validate_settings`).
    """
    messages = validate_settings(ex)
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
    return messages


def steps_cap(ex: ExploreConfig) -> int:
    """The longest run the page trains at the sidebar's sizes."""
    return max_steps_for(ex.n, ex.d, ex.k, ex.r)


def training_config(ex: ExploreConfig) -> tuple[TrainingConfig | None, str | None]:
    """The config the (checked) settings describe, or None and why not: a run longer than the sizes allow."""
    ss = st.session_state
    values = {key: ss[key] for key in SETTING_LABELS}
    # validate_settings has checked every value; the core's own check stays as the last word
    check_hyperparams(values["lr"], (values["beta1"], values["beta2"]), values["eps"], values["wd"], values["steps"])
    cap = steps_cap(ex)
    if values["steps"] > cap:
        return None, (f"at n = {ex.n}, d = {ex.d}, k = {ex.k}, r = {ex.r} a run is capped at {cap} steps, so that "
                      f"training answers within about a second; asked for {values['steps']}")
    edits = tuple(sorted((i, j, v) for (i, j), v in ss.get("edits", {}).get("T", {}).items()))
    return TrainingConfig(ex, ss["init"], values["rstar"], float(values["lr"]), float(values["beta1"]),
                          float(values["beta2"]), float(values["eps"]), float(values["wd"]), values["steps"], edits), None


def set_steps(steps: int) -> None:
    """The button's callback: runs before the widgets, so the steps field shows the new number."""
    st.session_state["steps"] = steps
