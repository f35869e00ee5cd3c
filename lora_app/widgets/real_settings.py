"""The Real model page's settings: its widgets' values (read by the page and its slides), the run controls and the
typed sequence. :func:`lora_app.config.real.real_config` checks them; the widgets' limits are not a check."""
from __future__ import annotations

import streamlit as st

from lora_core.finetune import TARGET_LABELS
from lora_core.tiny import TASKS

from ..config import real as config


def widget_values() -> dict:
    """The session's ``real_*`` widget values where set, else the page's defaults (a slide shown before any visit)."""
    defaults = {**config.DEFAULTS, **{key: t in config.DEFAULT_LORA for t, key in config.LORA_KEYS.items()}}
    return {key: st.session_state.get(key, defaults[key]) for key in config.WIDGET_KEYS}


def sequence_input() -> None:
    st.text_input("Type eight digits for the model to read", key="real_text", max_chars=config.TEXT_MAX,
                  persist_state="session", help="Digits 0 to 9, with or without spaces, e.g. 3 1 4 1 5 9 2 6.")


def run_controls() -> None:
    """The Fine-tune tab's controls: the task, LoRA or full fine-tuning, where LoRA goes and its hyperparameters."""
    st.segmented_control("New task", ("reverse", "permute"), key="real_task", required=True, persist_state="session",
                         format_func=lambda task: f"{task}: {TASKS[task].split(' (')[0]}")
    st.toggle("Full fine-tuning instead of LoRA (every weight trains)", key="real_full", persist_state="session")
    if not st.session_state["real_full"]:
        st.caption("Adapt these matrices")
        with st.container(horizontal=True, gap="medium"):
            for target in config.TARGETS:
                st.checkbox(TARGET_LABELS[target] + (" (up and down)" if target == "ffn" else ""),
                            key=config.LORA_KEYS[target], persist_state="session", width="content")
        cols = st.columns(4)
        cols[0].segmented_control("Layers", config.LAYER_CHOICES, key="real_layers", required=True,
                                  persist_state="session", format_func=lambda v: "all" if v == "all" else f"layer {v}")
        cols[1].slider("r: rank", 1, config.RANK_MAX, key="real_r", persist_state="session",
                       help=f"Columns of A and rows of B; at most {config.RANK_MAX}, the narrow side of every matrix here.")
        cols[2].number_input("α: LoRA alpha", config.ALPHA_MIN, config.ALPHA_MAX, step=1.0, key="real_alpha",
                             persist_state="session")
        cols[3].toggle("rsLoRA: s = α/√r", key="real_rslora", persist_state="session")
        st.toggle("DoRA: each adapted matrix also learns the length of its output columns (PEFT's use_dora)",
                  key="real_dora", persist_state="session",
                  help="W′ = m ⊙ (W + s·A·B)/‖W + s·A·B‖, per output column: see the Family page's DoRA part.")
    cols = st.columns(3)
    cols[0].select_slider("Learning rate", config.LR_CHOICES, key="real_lr", persist_state="session",
                          format_func=lambda v: f"{v:g}")
    cols[1].select_slider("Steps", config.STEP_CHOICES, key="real_steps", persist_state="session")
    cols[2].number_input("Seed", 0, config.SEED_MAX, step=1, key="real_seed", persist_state="session")
