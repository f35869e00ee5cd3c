"""The five stage views of one optimisation step, drawn from a cached TrainingRun (the Training page and its slides)."""
from __future__ import annotations

import numpy as np
import streamlit as st

from .. import figures
from ..compute import TrainingRun
from ..config import TrainingConfig
from ..text import latex
from ..text import training as text
from ..widgets import charts


def _row(items, key: str) -> None:
    """Heatmaps side by side, one cell size: (matrix, title, kwargs) each."""
    charts.matrix_row(items, key)



def stage_view(run: TrainingRun, cfg: TrainingConfig, t: int, stage: str, heading: bool = True) -> None:
    if heading:
        st.subheader(f"Step {t} of {run.n_steps} · {text.STAGE_TITLES[stage]}")
        st.caption(text.STAGE_NOTES[stage])
    {"forward": _forward, "loss": _loss, "backward": _backward, "adamw": _adamw, "update": _update}[stage](run, cfg, t)



def _forward(run, cfg, t):
    A, B = run.before(t)
    W_merged = run.W + run.scaling * A @ B
    q = run.at("q", t)
    z_q = figures.symmetric_range(q, run.T)
    _row([(run.X, "X", {}), (W_merged, "W_Q + s·A_Q·B_Q", {}),
          (q, "Q", {"zmax": z_q}), (run.T, "target T", {"zmax": z_q, "show_scale": True})], "fwd")
    # opened on demand: closed, a step redraws two figures instead of four
    with st.expander("What W_Q + s·A_Q·B_Q is made of: A_Q and B_Q (trained), W_Q (frozen)",
                     key="forward_parts", on_change="rerun") as parts:
        if parts.open:
            _row([(A, "A_Q", {"role": "trainable"}), (B, "B_Q", {"role": "trainable"}),
                  (run.W, "W_Q", {"role": "frozen"})], "fwd_ab")
    if latex.fits_equation(run.X, run.W, A, B):
        st.latex(latex.forward_equation(run.X, W_merged, q))



def _loss(run, cfg, t):
    q = run.at("q", t)
    diff = q - run.T
    z = figures.symmetric_range(q, run.T)
    _row([(q, "Q", {"zmax": z}), (run.T, "target T", {"zmax": z}), (diff, "Q − T", {"zmax": z, "show_scale": True})], "loss")
    st.latex(latex.loss_equation(diff, float(run.losses[t - 1])))



def _backward(run, cfg, t):
    rec = run.step(t)  # one replay of step t for all four
    G, gA, gB, gX = rec.grad_q, rec.grad_A, rec.grad_B, rec.grad_X
    z = figures.symmetric_range(gA, gB)
    _row([(G, "G = ∂L/∂Q", {}), (gB, "∂L/∂B_Q", {"zmax": z, "role": "trainable"}),
          (gA, "∂L/∂A_Q", {"zmax": z, "role": "trainable"})], "bwd")
    _row([(run.W, "W_Q · no gradient", {"role": "frozen"}), (gX, "∂L/∂X (flows through W_Q)", {})], "bwd_w")
    if t == 1 and not np.any(run.B0):
        a_change = float(np.abs(run.at("A", 1) - run.A0).max())
        st.info(f"B_Q = 0 at the start, so ∂L/∂A_Q = s·Xᵀ·G·B_Qᵀ is exactly zero here (largest |entry|: "
                f"{latex.sci_text(float(np.abs(gA).max()))}), and so is Adam's update of A_Q in step 1 (m = v = 0). "
                + text.zero_b_first_step(cfg.lr, cfg.wd, not np.any(gB), a_change), icon=":material/lightbulb:")
    for line in latex.grad_equations(G, gA, gB, run.scaling, *G.shape):
        st.latex(line)



def _adamw(run, cfg, t):
    rec = run.step(t)  # one replay of step t for all twelve
    for p in ("A", "B"):
        f = lambda name: getattr(rec, f"{name}_{p}")
        z_m = figures.symmetric_range(f("exp_avg"), f("m_hat"))
        z_v = figures.symmetric_range(f("exp_avg_sq"), f("v_hat"))
        small = {}
        _row([(f("decayed"), f"{p}_Q·(1 − lr·λ)", {"role": "trainable", **small}),
              (f("exp_avg"), f"m ({p})", {"zmax": z_m, **small}), (f("m_hat"), f"m̂ ({p})", {"zmax": z_m, **small}),
              (f("exp_avg_sq"), f"v ({p})", {"zmax": z_v, **small}), (f("v_hat"), f"v̂ ({p})", {"zmax": z_v, **small}),
              (f("update"), f"Δ{p}_Q", small)], f"adam_{p}")
    for line in latex.adamw_equations(t, cfg.lr, cfg.wd, cfg.beta1, cfg.beta2, cfg.eps):
        st.latex(line)



def _update(run, cfg, t):
    A_old, B_old = run.before(t)
    A, B, q = run.at("A", t), run.at("B", t), run.q_after(t)
    z = figures.symmetric_range(q, run.T)
    _row([(A, "new A_Q", {"role": "trainable"}), (B, "new B_Q", {"role": "trainable"}),
          (q, "new Q", {"zmax": z}), (run.T, "target T", {"zmax": z, "show_scale": True})], "upd")
    # numbers in a sentence are text (latex.sci_text); LaTeX is for st.latex only
    a_change, b_change = float(np.abs(A - A_old).max()), float(np.abs(B - B_old).max())
    why = ""
    if t == 1 and not np.any(run.B0):
        why = (" In step 1 A_Q's gradient is zero: its change is weight decay's alone." if cfg.wd > 0 else
               " In step 1 A_Q's gradient is zero and λ = 0, so A_Q has not moved.")
    st.markdown(f"Loss before this step **{latex.sci_text(float(run.losses[t - 1]))}**, after it "
                f"**{latex.sci_text(float(run.losses[t]))}**. Largest change: A_Q by {latex.sci_text(a_change, 3)}, "
                f"B_Q by {latex.sci_text(b_change, 3)}, W_Q by 0.{why}")
