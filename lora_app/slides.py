"""The Present page's ten slides. Each one draws with the pages' own builders and cached core calls."""
from __future__ import annotations

import streamlit as st

from lora_core import param_counts

from . import figures, latex, ui
from .compute import explore_arrays, training_run
from .compute.attention import attention_arrays, param_table
from .compute.scale import scale_numbers
from .config import ExploreConfig, TrainingConfig
from .config.attention import AttentionConfig
from .config.scale import ScaleConfig
from .text import present as text

SLIDE_HEIGHT = 470  # px for a row of heatmaps: fills a 1080p projector under the title
SLIDE_SCALE = 1.5   # fonts in the figures, for the back of the room
MATTERS_MODEL, MATTERS_R = "llama-2-7b", 8


def _heatmaps(items, key: str, height: int | None = SLIDE_HEIGHT, scale: float = SLIDE_SCALE,
              equal: bool = False) -> None:
    """A row of heatmaps, each column as wide as its matrix (within reason), so cells match in size."""
    cols = st.columns(len(items) if equal else [min(max(M.shape[1], 2), 8) for M, _, _ in items])
    for c, (col, (M, title, kw)) in enumerate(zip(cols, items)):
        ui.chart(col, figures.matrix_heatmap(M, title, height=height, scale=scale, **kw), key=f"{key}_{c}")


def what(ex: ExploreConfig) -> None:
    st.markdown(text.WHAT)
    res = explore_arrays(ex)
    z = figures.symmetric_range(res.A, res.B)
    _heatmaps([(res.W, "W_Q", {"role": "frozen"}), (res.A, "A_Q", {"role": "trainable", "zmax": z}),
               (res.B, "B_Q", {"role": "trainable", "zmax": z})], "what")


def equation(ex: ExploreConfig) -> None:
    res = explore_arrays(ex)
    st.latex(r"\Large Q = X\,(W_Q + s\,A_Q B_Q)")
    st.markdown(text.EQUATION)
    if latex.fits_equation(res.X, res.W, res.A, res.B):
        st.latex(r"\large " + latex.delta_equation(res.A, res.B, res.delta_W, res.scaling))
        st.latex(r"\large " + latex.forward_equation(res.X, res.W_merged, res.q))
    else:
        _heatmaps([(res.delta_W, "ΔW_Q = s·A_Q·B_Q", {}), (res.q, "Q", {})], "eq")


def why(ex: ExploreConfig) -> None:
    st.markdown(text.WHY)
    seed, cur, big = param_counts(5, 3, 2), param_counts(ex.d, ex.k, ex.r), param_counts(4096, 4096, 8)
    cols = st.columns(3)
    for col, label, c in ((cols[0], "the blog's 5×3, r = 2", seed), (cols[1], f"this {ex.d}×{ex.k}, r = {ex.r}", cur),
                          (cols[2], "a 4096×4096 projection, r = 8", big)):
        col.metric(label, f"{c.lora:,} trained", f"{c.lora - c.full:+,} vs {c.full:,} for full fine-tuning",
                   delta_color="inverse", border=True)


def matrices(ex: ExploreConfig) -> None:
    st.markdown(text.MATRICES)
    res = explore_arrays(ex)
    z = figures.symmetric_range(res.A, res.B)
    _heatmaps([(res.X, "X", {}), (res.W, "W_Q", {"role": "frozen"}), (res.A, "A_Q", {"role": "trainable", "zmax": z}),
               (res.B, "B_Q", {"role": "trainable", "zmax": z})], "mat")


def compare(ex: ExploreConfig) -> None:
    st.markdown(text.COMPARE)
    res = explore_arrays(ex)
    z = figures.symmetric_range(res.base, res.q, res.delta_q)
    _heatmaps([(res.base, "Q = X·W_Q", {"zmax": z}), (res.q, "Q = X·(W_Q + ΔW_Q)", {"zmax": z}),
               (res.delta_q, "ΔQ = difference", {"zmax": z, "show_scale": True})], "cmp")


def _first_step(ex: ExploreConfig):
    cfg = TrainingConfig(ex)
    return cfg, training_run(cfg)


def forward(ex: ExploreConfig) -> None:
    st.markdown(text.FORWARD)
    cfg, run = _first_step(ex)
    A, B = run.before(1)
    q = run.at("q", 1)
    z = figures.symmetric_range(q, run.T)
    _heatmaps([(run.X, "X", {}), (run.W + run.scaling * A @ B, "W_Q + s·A_Q·B_Q", {}),
               (q, "Q", {"zmax": z}), (run.T, "target T", {"zmax": z})], "fwd")
    st.latex(r"\large " + latex.loss_equation(q - run.T, float(run.losses[0])))


def backward(ex: ExploreConfig) -> None:
    st.markdown(text.BACKWARD)
    cfg, run = _first_step(ex)
    rec = run.step(1)
    gA, gB = rec.grad_A, rec.grad_B
    z = figures.symmetric_range(gA, gB)
    _heatmaps([(rec.grad_q, "G = ∂L/∂Q", {}), (gB, "∂L/∂B_Q", {"zmax": z, "role": "trainable"}),
               (gA, "∂L/∂A_Q", {"zmax": z, "role": "trainable"}), (run.W, "W_Q: no gradient", {"role": "frozen"})], "bwd")
    st.latex(r"\large \frac{\partial L}{\partial B_Q} = s\,(XA_Q)^\top G \qquad \frac{\partial L}{\partial A_Q} = "
             r"s\,X^\top G\,B_Q^\top \qquad \frac{\partial L}{\partial W_Q}\ \text{: none (frozen)}")


def adamw(ex: ExploreConfig) -> None:
    st.markdown(text.ADAMW)
    cfg, run = _first_step(ex)
    A0, B0 = run.before(1)
    rec = run.step(1)
    _heatmaps([(A0, "A_Q before", {"role": "trainable"}), (rec.update_A, "ΔA_Q", {}),
               (run.at("A", 1), "A_Q after", {"role": "trainable"}), (B0, "B_Q before", {"role": "trainable"}),
               (rec.update_B, "ΔB_Q", {}), (run.at("B", 1), "B_Q after", {"role": "trainable"})],
              "adam", height=None, scale=1.1, equal=True)
    ui.chart(st, figures.loss_curve(run.losses, run.full_losses, 1, lora_count=run.lora_count,
                                    full_count=run.full_count, floor=run.floor, height=290), key="slide_loss")


def where(ex: ExploreConfig) -> None:
    st.markdown(text.WHERE)
    res = attention_arrays(AttentionConfig(ex, lora=("q", "v")))
    plain, adapted = res.plain.weights[0], res.adapted.weights[0]
    change = adapted - plain
    cols = st.columns(3)
    for col, M, title, zmax in ((cols[0], plain, "attention without LoRA", 1.0),
                                (cols[1], adapted, "with LoRA on W_Q, W_V", 1.0),
                                (cols[2], change, "change", figures.symmetric_range(change))):
        ui.chart(col, figures.attention.attention_map(M, title, zmax=zmax, decimals=None), key=f"where_{title}")
    st.dataframe(param_table(res.rows), hide_index=True, width="stretch")


def matters(ex: ExploreConfig) -> None:
    num = scale_numbers(ScaleConfig(MATTERS_MODEL, ("q", "v"), MATTERS_R))
    st.markdown(text.MATTERS.format(model=num.spec.name, r=MATTERS_R))
    human = figures.scale.human_bytes
    cols = st.columns(3)
    for col, label, value, versus in (
        (cols[0], "trainable parameters", f"{num.trainable:,}", f"{num.share:.3%} of {num.spec.base_params:,}"),
        (cols[1], "adapter file (fp16)", human(num.adapter_fp16), f"the whole model: {human(num.model_fp16)}"),
        (cols[2], "training memory", human(num.memory.lora.total), f"full fine-tuning: {human(num.memory.full.total)}"),
    ):
        col.metric(label, value, versus, delta_color="off", delta_arrow="off", border=True)
    ui.chart(st, figures.scale.memory_bars(num.memory.full._asdict(), num.memory.lora._asdict(),
                                           "Weights, gradients and AdamW states"), key="matters_mem")


DRAW = {"what": what, "equation": equation, "why": why, "matrices": matrices, "compare": compare,
        "forward": forward, "backward": backward, "adamw": adamw, "where": where, "matters": matters}
