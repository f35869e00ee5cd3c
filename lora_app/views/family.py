"""The Family page's parts, one per variant and one that compares them (the family's slides: lora_app/slides/family.py)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import streamlit as st

from lora_core.family import NAMES, VARIANTS

from .. import figures
from ..compute import family as compute
from ..config.family import LR_CHOICES, RATIO_CHOICES, STEPS_MAX, STEPS_MIN, STEPS_STEP, FamilyConfig
from ..text import family as text
from ..widgets import charts


def task_controls(cfg: FamilyConfig, *, steps: bool = True, ratio: bool = False) -> None:
    """The task's rank r*, the learning rate and the steps: what the training parts share (kept in the URL)."""
    r_max = min(cfg.example.d, cfg.example.k)
    row = st.container(horizontal=True, gap="medium")
    if ratio:
        row.select_slider("λ: B's learning rate over A's", RATIO_CHOICES, key="fam_ratio", persist_state="session",
                          format_func=lambda v: f"{v:g}", help="LoRA+'s ratio: B learns λ times faster than A.")
    if r_max > 1:
        row.slider("rank r* of the task's ΔW*", 1, r_max, key="fam_rstar", persist_state="session",
                   help="The Training page's task: T = X·(W_Q + ΔW*), with ΔW* a seeded update of this rank.")
    else:
        row.caption("The task's ΔW* has rank r* = 1: min(d, k) = 1.")
    row.select_slider("learning rate", LR_CHOICES, key="fam_lr", persist_state="session",
                      format_func=lambda v: f"{v:g}", help="AdamW's learning rate, the same for every variant "
                      "(LoRA+ multiplies B's by λ).")
    if steps:
        row.slider("steps", STEPS_MIN, STEPS_MAX, step=STEPS_STEP, key="fam_steps", persist_state="session",
                   help="AdamW steps of every run.")


def qlora(cfg: FamilyConfig) -> None:
    res = compute.qlora_view(cfg)
    st.markdown(text.QLORA_NOTE)
    st.checkbox("Double quantization (store the absmax constants in 8 bits)", key="fam_dq", persist_state="session")
    z = figures.symmetric_range(res.W, res.W_tilde)
    codes = res.codes.astype(int)
    charts.matrix_row([(res.W, "W_Q", {"role": "frozen", "zmax": z}),
                       (res.levels, "4-bit code", {"zmax": 1.0, "labels": codes}),
                       (res.W_tilde, "W̃_Q = level × absmax", {"role": "frozen", "zmax": z}),
                       (res.error, "W_Q − W̃_Q", {"show_scale": True})], "fam_q_w")
    st.caption(text.QLORA_CODES)
    counts = np.bincount(codes.ravel(), minlength=16)
    charts.chart(st, figures.family.nf4_levels_figure(res.all_levels, counts), key="fam_q_levels")
    blocks = int(res.absmax.size)
    st.markdown(text.bits_sentence(res.bits, res.bits_other, cfg.double_quant, blocks, res.W.size))
    absmax = ", ".join(f"{a:.4g}" for a in res.absmax[:8]) + (" …" if blocks > 8 else "")
    st.caption(f"absmax of each block (Wᵀ read row by row, 64 at a time): {absmax}")
    z_q = figures.symmetric_range(res.q_over_W, res.q_over_W_tilde)
    charts.matrix_row([(res.q_over_W, "Q = X·(W_Q + s·A_Q·B_Q)", {"zmax": z_q}),
                       (res.q_over_W_tilde, "Q = X·(W̃_Q + s·A_Q·B_Q)", {"zmax": z_q}),
                       (res.q_over_W_tilde - res.q_over_W, "difference", {"show_scale": True})], "fam_q_q")
    st.markdown(text.quantization_sentence(float(np.abs(res.error).max()), float(np.abs(res.W).max()),
                                           float(np.abs(res.q_over_W_tilde - res.q_over_W).max())))
    st.caption(f"In PEFT: {text.PEFT_OPTION['qlora']}.")


def dora(cfg: FamilyConfig) -> None:
    st.markdown(text.DORA_NOTE)
    task_controls(cfg, steps=False)
    res = compute.dora_view(cfg)
    start = "m from the uploaded adapter" if cfg.magnitude else "m = ‖V‖ at the start"
    charts.matrix_row([(res.V, "V = W_Q + s·A_Q·B_Q", {}),
                       (res.direction, "direction V/‖V‖", {"zmax": 1.0}),
                       (res.m_start[None], start, {"role": "trainable"})], "fam_dora_start")
    if cfg.magnitude:
        st.caption(text.UPLOADED_M)
    if res.zero_columns:
        st.warning(text.zero_columns_sentence(res.zero_columns), icon=":material/warning:")
        return
    st.markdown("**After one AdamW step on the task**")
    charts.matrix_row([(res.direction_after, "direction after", {"zmax": 1.0}),
                       (res.m_after[None], "m after", {"role": "trainable"}),
                       (res.m_after[None] - res.m_start[None], "change in m", {})], "fam_dora_after")
    st.markdown(text.dora_sentence(res.m_start, res.m_after, res.turned_deg, res.loss_before, res.loss_after, res.lr))
    st.caption(f"In PEFT: {text.PEFT_OPTION['dora']}.")


def pissa(cfg: FamilyConfig) -> None:
    st.markdown(text.PISSA_NOTE)
    res = compute.pissa_view(cfg)
    r = cfg.example.r
    charts.chart(st, figures.rank.singular_value_bars(res.sigma, r, "Singular values of W_Q", kept="top r: into A and B",
                                                      dropped="the rest: stays in W_res"), key="fam_p_sigma")
    z = figures.symmetric_range(res.W, res.principal, res.W_res)
    charts.matrix_row([(res.W, "W_Q", {"zmax": z}), (res.principal, "s·A_Q·B_Q", {"zmax": z, "role": "trainable"}),
                       (res.W_res, "W_res", {"zmax": z, "role": "frozen", "show_scale": True})], "fam_p_w")
    z_ab = figures.symmetric_range(res.A, res.B)
    charts.matrix_row([(res.A, "A_Q", {"role": "trainable", "zmax": z_ab}),
                       (res.B, "B_Q", {"role": "trainable", "zmax": z_ab})], "fam_p_ab")
    st.markdown(text.pissa_sentence(res.principal_share, r, res.rebuilt_error))
    st.caption(f"In PEFT: {text.PEFT_OPTION['pissa']}.")


def loraplus(cfg: FamilyConfig) -> None:
    st.markdown(text.LORAPLUS_NOTE)
    task_controls(cfg, ratio=True)
    res = compute.comparison(cfg)
    ex, lrs = cfg.example, res.runs["loraplus"].lrs
    st.table(pd.DataFrame({"trains": ["A_Q", "B_Q"], "shape": [f"{ex.d}×{ex.r}", f"{ex.r}×{ex.k}"],
                           "numbers": [ex.d * ex.r, ex.r * ex.k],
                           "learning rate": [f"{lrs['A']:g}", f"{lrs['B']:g}"]}).set_index("trains"))
    against_lora(res, "loraplus")


def vera(cfg: FamilyConfig) -> None:
    st.markdown(text.VERA_NOTE)
    task_controls(cfg)
    res = compute.vera_view(cfg)
    z = figures.symmetric_range(res.A, res.B)
    charts.matrix_row([(res.A, "A (random)", {"role": "frozen", "zmax": z}), (res.B, "B (random)", {"role": "frozen", "zmax": z}),
                       (res.d0, "d at step 0", {"role": "trainable"}), (res.b0, "b at step 0", {"role": "trainable"})],
                      "fam_v_start")
    st.markdown(f"**After {res.steps:,} steps on the task**")
    charts.matrix_row([(res.d_vec, "d", {"role": "trainable"}), (res.b_vec, "b", {"role": "trainable"}),
                       (res.delta_W, "ΔW = A·diag(d)·B·diag(b)", {"show_scale": True})], "fam_v_after")
    comp = compute.comparison(cfg)
    ex = cfg.example
    st.markdown(text.counts_sentence(comp.sizes["lora"].trained, comp.sizes["vera"].trained, ex.r, ex.d, ex.k,
                                     comp.runs["vera"].lrs["d"]))
    against_lora(comp, "vera")


def compare(cfg: FamilyConfig) -> None:
    st.markdown(text.COMPARE_NOTE)
    task_controls(cfg)
    res = compute.comparison(cfg)
    curves(res, VARIANTS, "fam_curves")
    finals = finals_of(res)
    st.markdown(text.compare_sentence(NAMES, finals, compute.fell_fastest(res)[0], res.steps, cfg.steps))
    st.markdown("**What each one trains and stores**")
    st.table(size_table(res, finals))
    st.caption(text.SIZES_NOTE.format(d=res.shape[0], k=res.shape[1], r=res.shape[2], D=compute.REFERENCE[0],
                                      K=compute.REFERENCE[1], R=compute.REFERENCE[2]))


def finals_of(res) -> dict[str, float]:
    return {v: float(run.losses[-1]) for v, run in res.runs.items()}


def against_lora(res, variant: str) -> None:
    """The variant's loss curve beside LoRA's, a sentence from their final losses, and its PEFT option."""
    curves(res, ("lora", variant), f"fam_{variant}_curves")
    st.markdown(text.pair_sentence(NAMES, variant, finals_of(res), res.steps))
    st.caption(f"In PEFT: {text.PEFT_OPTION[variant]}.")


def curves(res, variants, key: str) -> None:
    charts.chart(st, figures.family.variant_curves({v: res.runs[v].losses for v in variants}, NAMES,
                                                    {v: res.runs[v].trained for v in variants},
                                                    width=charts.column_width(1.0)), key=key)


def size_table(res, finals: dict) -> pd.DataFrame:
    rows = []
    D, K, R = compute.REFERENCE
    for v in VARIANTS:
        here, big = res.sizes[v], res.reference[v]
        rows.append({"variant": NAMES[v], "trained here": f"{here.trained:,}",
                     "final loss": text.sci_text(finals[v], 3) if math.isfinite(finals[v]) else "not finite",
                     f"trained at {D}×{K}, r = {R}": f"{big.trained:,}",
                     "frozen base": _bytes(big.base_bytes), "adapter file": _bytes(big.adapter_bytes)})
    return pd.DataFrame(rows).set_index("variant")


def _bytes(n: float) -> str:
    for unit, size in (("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.3g} B"
