"""The toy example's slides: what LoRA is, its equation, the matrices, Q with and without it,
one training step, where it goes, why it matters."""
from __future__ import annotations

import streamlit as st

from lora_core import param_counts

from .. import figures
from ..compute import explore_arrays, max_steps_for, training_run
from ..compute.attention import attention_arrays, param_table
from ..compute.scale import scale_numbers
from ..config import ExploreConfig, TrainingConfig
from ..config.attention import AttentionConfig
from ..config.scale import ScaleConfig
from ..text import latex
from ..text import present as text
from ..widgets import charts
from .layout import MIN_CHART, SlideSpace, eq_height

MATTERS_MODEL, MATTERS_R = "llama-2-7b", 8

NO_DELTA = "ΔA_Q, ΔB_Q (the step itself) and the loss curve are on the Training page: no room for them on this screen."

NO_CURVE = "The loss curve of this run is on the Training page: no room for it on this screen."



def what(ex: ExploreConfig, sp: SlideSpace) -> None:
    sp.markdown(text.WHAT)
    res = explore_arrays(ex)
    z = figures.symmetric_range(res.A, res.B)
    sp.row([(res.W, "W_Q", {"role": "frozen"}), (res.A, "A_Q", {"role": "trainable", "zmax": z}),
            (res.B, "B_Q", {"role": "trainable", "zmax": z})], "what")



def equation(ex: ExploreConfig, sp: SlideSpace) -> None:
    res = explore_arrays(ex)
    sp.latex(r"\Large Q = X\,(W_Q + s\,A_Q B_Q)", size=1.44)
    sp.markdown(text.EQUATION)
    sp.controls(ex)
    if latex.fits_equation(res.X, res.W, res.A, res.B):
        rows_delta, rows_fwd = res.W.shape[0], max(res.X.shape[0], res.W.shape[0])
        # the largest LaTeX size at which both equations fit what is left
        # the pair the loop stops at is used after it
        for size, cmd in ((1.2, r"\large "), (1.0, ""), (0.9, r"\small "), (0.8, r"\footnotesize "), (0.7, r"\scriptsize ")):  # noqa: B007 - see above
            if eq_height(rows_delta, size, sp.rem) + eq_height(rows_fwd, size, sp.rem) + 2 * sp.rem <= sp.left:
                break
        both = eq_height(rows_delta, size, sp.rem) + eq_height(rows_fwd, size, sp.rem) + 2 * sp.rem <= sp.left
        sp.latex(cmd + latex.delta_equation(res.A, res.B, res.delta_W, res.scaling), rows_delta, size)
        if both:
            sp.latex(cmd + latex.forward_equation(res.X, res.W_merged, res.q), rows_fwd, size)
        else:
            st.caption("Q = X·(W_Q + ΔW_Q) with these numbers is on slide 5, and on the Explore page: "
                       "this screen has room for one equation.")
    else:
        sp.row([(res.delta_W, "ΔW_Q = s·A_Q·B_Q", {}), (res.q, "Q", {})], "eq")



def why(ex: ExploreConfig, sp: SlideSpace) -> None:
    sp.markdown(text.WHY)
    seed, cur, big = param_counts(5, 3, 2), param_counts(ex.d, ex.k, ex.r), param_counts(4096, 4096, 8)
    cols = st.columns(3)
    for col, label, c in ((cols[0], "the blog's 5×3, r = 2", seed), (cols[1], f"this {ex.d}×{ex.k}, r = {ex.r}", cur),
                          (cols[2], "a 4096×4096 projection, r = 8", big)):
        col.metric(label, f"{c.lora:,} trained", f"{c.lora - c.full:+,} vs {c.full:,} for full fine-tuning",
                   delta_color="inverse", border=True)
    sp.metrics(2 if sp.width < 1100 else 1)



def matrices(ex: ExploreConfig, sp: SlideSpace) -> None:
    sp.markdown(text.MATRICES)
    sp.controls(ex)
    res = explore_arrays(ex)
    z = figures.symmetric_range(res.A, res.B)
    sp.row([(res.X, "X", {}), (res.W, "W_Q", {"role": "frozen"}), (res.A, "A_Q", {"role": "trainable", "zmax": z}),
            (res.B, "B_Q", {"role": "trainable", "zmax": z})], "mat")



def compare(ex: ExploreConfig, sp: SlideSpace) -> None:
    sp.markdown(text.COMPARE)
    sp.controls(ex)
    res = explore_arrays(ex)
    z = figures.symmetric_range(res.base, res.q, res.delta_q)
    sp.row([(res.base, "Q = X·W_Q", {"zmax": z}), (res.q, "Q = X·(W_Q + ΔW_Q)", {"zmax": z}),
            (res.delta_q, "ΔQ = difference", {"zmax": z, "show_scale": True})], "cmp")



def _first_step(ex: ExploreConfig):
    # the Training page's default run, shortened where its sizes make 300 steps more than a slide may wait for
    cfg = TrainingConfig(ex, steps=min(TrainingConfig.steps, max_steps_for(ex.n, ex.d, ex.k, ex.r)))
    return cfg, training_run(cfg)



def forward(ex: ExploreConfig, sp: SlideSpace) -> None:
    sp.markdown(text.FORWARD)
    cfg, run = _first_step(ex)
    A, B = run.before(1)
    q = run.at("q", 1)
    z = figures.symmetric_range(q, run.T)
    sp.take(2.2 * 1.2 * 1.21 * sp.rem)  # the loss equation under the row
    sp.row([(run.X, "X", {}), (run.W + run.scaling * A @ B, "W_Q + s·A_Q·B_Q", {}),
            (q, "Q", {"zmax": z}), (run.T, "target T", {"zmax": z})], "fwd")
    st.latex(r"\large " + latex.loss_equation(q - run.T, float(run.losses[0])))



def backward(ex: ExploreConfig, sp: SlideSpace) -> None:
    sp.markdown(text.BACKWARD)
    cfg, run = _first_step(ex)
    rec = run.step(1)
    gA, gB = rec.grad_A, rec.grad_B
    z = figures.symmetric_range(gA, gB)
    sp.take(3.6 * 1.2 * 1.21 * sp.rem)  # the gradient equations under the row
    sp.row([(rec.grad_q, "G = ∂L/∂Q", {}), (gB, "∂L/∂B_Q", {"zmax": z, "role": "trainable"}),
            (gA, "∂L/∂A_Q", {"zmax": z, "role": "trainable"}), (run.W, "W_Q: no gradient", {"role": "frozen"})], "bwd")
    st.latex(r"\large \frac{\partial L}{\partial B_Q} = s\,(XA_Q)^\top G \qquad \frac{\partial L}{\partial A_Q} = "
             r"s\,X^\top G\,B_Q^\top \qquad \frac{\partial L}{\partial W_Q}\ \text{: none (frozen)}")



def adamw(ex: ExploreConfig, sp: SlideSpace) -> None:
    sp.markdown(text.ADAMW)
    cfg, run = _first_step(ex)
    A0, B0 = run.before(1)
    rec = run.step(1)
    items = [(A0, "A_Q before", {"role": "trainable"}), (rec.update_A, "ΔA_Q", {}),
             (run.at("A", 1), "A_Q after", {"role": "trainable"}), (B0, "B_Q before", {"role": "trainable"}),
             (rec.update_B, "ΔB_Q", {}), (run.at("B", 1), "B_Q after", {"role": "trainable"})]
    # the loss curve takes a third of the height only if the matrices keep their numbers in full without it
    cell, full = sp.cell(items, 0.64)
    curve = cell >= full and sp.left * 0.34 >= MIN_CHART * max(sp.scale, 1) + sp.rem
    if not curve:
        sp.take(sp.caption_height(NO_DELTA))
        six, fewer = sp.cell(items)[0], [items[0], items[2], items[3], items[5]]
        if six < full and sp.cell(fewer)[0] > six:  # six are too many to read here: before and after only
            items = fewer  # one caption then says where both the steps and the curve are
    sp.row(items, "adam", share=0.64 if curve else 1.0)
    height = sp.chart_height(420) if curve else None
    if not height:
        st.caption(NO_DELTA if len(items) == 4 else NO_CURVE)
    else:
        charts.chart(st, figures.loss_curve(run.losses, run.full_losses, 1, lora_count=run.lora_count,
                                        full_count=run.full_count, floor=run.floor, height=height, scale=sp.scale,
                                        width=sp.width),
                 key="slide_loss")



def where(ex: ExploreConfig, sp: SlideSpace) -> None:
    sp.markdown(text.WHERE)
    res = attention_arrays(AttentionConfig(ex, lora=("q", "v")))
    plain, adapted = res.plain.weights[0], res.adapted.weights[0]
    change = adapted - plain
    table = param_table(res.rows)
    item = figures.attention.attention_item
    items = [item(plain, "attention without LoRA", decimals=None), item(adapted, "with LoRA on W_Q, W_V", decimals=None),
             item(change, "change", zmax=figures.symmetric_range(change), decimals=None)]
    table_h = (len(table) + 1) * 1.95 * sp.rem + sp.rem
    sp.left -= table_h
    cell, full = sp.cell(items)
    sp.left += table_h
    with_table = cell >= full
    layer = table.iloc[-1]
    summary = (f"In this layer LoRA trains **{int(layer.iloc[-1]):,}** numbers (A and B on W_Q and W_V); "
               f"**{int(layer.iloc[-2]):,}** stay frozen. The Attention page has the table, matrix by matrix.")
    if with_table:
        sp.table(len(table))
    else:
        sp.take(sp.text_height(summary))
    sp.row(items, "where")
    if with_table:
        st.table(table, hide_index=True)
    else:  # the table needs more room than this screen has: its totals in one sentence
        st.markdown(summary)



def matters(ex: ExploreConfig, sp: SlideSpace) -> None:
    num = scale_numbers(ScaleConfig(MATTERS_MODEL, ("q", "v"), MATTERS_R))
    sp.markdown(text.MATTERS.format(model=num.spec.name, r=MATTERS_R))
    human = figures.scale.human_bytes
    cols = st.columns(3)
    for col, label, value, versus in (
        (cols[0], "trainable parameters", f"{num.trainable:,}", f"{num.share:.3%} of {num.spec.base_params:,}"),
        (cols[1], "adapter file (fp16)", human(num.adapter_fp16), f"the whole model: {human(num.model_fp16)}"),
        (cols[2], "training memory", human(num.memory.lora.total), f"full fine-tuning: {human(num.memory.full.total)}"),
    ):
        col.metric(label, value, versus, delta_color="off", delta_arrow="off", border=True)
    sp.metrics(2 if sp.width < 1100 else 1)
    height = sp.chart_height(400)
    if height:
        charts.chart(st, figures.scale.memory_bars(num.memory.full._asdict(), num.memory.lora._asdict(),
                                               "Weights, gradients and AdamW states", height=height, scale=sp.scale,
                                               width=sp.width),
                 key="matters_mem")
    else:
        st.caption("The memory chart is on the Scale page: this screen has no room for it under the numbers.")
