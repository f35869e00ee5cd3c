"""Scale's "which GPU" part: the blog's GPU row tested card by card (its slide: lora_app/slides/family.py)."""
from __future__ import annotations

import streamlit as st

from lora_core.gpu import CARDS, METHOD_NAMES, METHODS, gigabytes
from lora_core.scale import MODELS

from .. import figures
from ..compute import gpu
from ..config.scale import BATCH_CHOICES, SEQ_CHOICES, ScaleConfig
from ..text import scale as text
from ..widgets import charts, screen


def gpu_controls() -> None:
    row = st.container(horizontal=True, gap="medium", vertical_alignment="bottom")
    row.select_slider("sequence length s (tokens)", SEQ_CHOICES, key="gpu_seq", persist_state="session")
    row.select_slider("batch size b", BATCH_CHOICES, key="gpu_batch", persist_state="session")
    row.toggle("gradient checkpointing", key="gpu_ckpt", persist_state="session")
    row.toggle("double quantization (QLoRA)", key="gpu_dq", persist_state="session")


def which_gpu(cfg: ScaleConfig) -> None:
    st.markdown(text.GPU_INTRO)
    gpu_controls()
    num = gpu.gpu_numbers(cfg)
    est, spec = num.estimate, MODELS[cfg.model]
    totals = {m: est.methods[m].total for m in METHODS}
    charts.chart(st, figures.scale.gpu_totals(totals, METHOD_NAMES, [(c.name, c.memory) for c in CARDS],
                                              f"One training step of {spec.name}", width=screen.current().content_width()),
                 key="fig_gpu")
    st.caption(f"LoRA at r = {cfg.r} on {', '.join(cfg.targets) or 'nothing'}; {cfg.batch} × {cfg.seq} tokens, "
               f"{'with' if cfg.checkpointing else 'without'} gradient checkpointing; QLoRA "
               f"{'with' if cfg.double_quant else 'without'} double quantization. Dotted lines: the cards' memory.")
    st.table(gpu.cards_table(est))
    names = {key: spec.name for key, spec in MODELS.items()}
    st.markdown(text.seed_claim_sentence(num.largest, names, gpu.card_name("t4"), gpu.card_name("a100-80")))
    st.markdown(text.paper_65b_sentence(gigabytes(num.paper.methods["full"].total),
                                        gigabytes(num.paper.methods["qlora"].total), gpu.PAPER_FULL_GB,
                                        gpu.PAPER_QLORA_GB))
    with st.expander("What each method holds, and what is assumed"):
        st.table(gpu.breakdown_table(est))
        st.markdown(text.GPU_ASSUMPTIONS)
