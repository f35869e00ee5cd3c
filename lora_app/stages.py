"""The Training page's stepper: its controls and one view per stage, drawn from a cached TrainingRun."""
from __future__ import annotations

import numpy as np
import streamlit as st

from . import figures, latex, run_gate, screen, ui
from .compute import TrainingRun
from .config import STAGES, TrainingConfig
from .text import training as text

PLAY_INTERVAL_S = 0.6


# --- moving through steps and stages ----------------------------------------------------------

def _move(delta: int, n_steps: int) -> None:
    """One stage forward or back; past the last stage it moves on to the next step's forward pass."""
    ss = st.session_state
    i, step = STAGES.index(ss["stage"]) + delta, ss["step"]
    if i >= len(STAGES):
        i, step = (0, step + 1) if step < n_steps else (len(STAGES) - 1, step)
    elif i < 0:
        i, step = (len(STAGES) - 1, step - 1) if step > 1 else (0, step)
    ss["stage"], ss["step"] = STAGES[i], step


def _next_step(n_steps: int) -> None:
    st.session_state["step"] = min(st.session_state["step"] + 1, n_steps)


def _toggle_play() -> None:
    st.session_state["playing"] = not st.session_state.get("playing", False)


def _reset() -> None:
    st.session_state.update(step=1, stage="forward", playing=False)


def before_widgets(n_steps: int) -> None:
    """Clamp the step to what the run holds and apply a pending play tick; runs before the widgets."""
    ss = st.session_state
    if ss.pop("_advance", False) and ss.get("playing"):
        ss["step"] = ss.get("step", 1) + 1
    ss["step"] = min(max(int(ss.get("step", 1)), 1), n_steps)
    if ss.get("stage") not in STAGES:
        ss["stage"] = "forward"
    # the keys counted in the browser (screen.py), every press in order: none is lost to a rerun in flight
    moves = {"next": lambda: _move(1, n_steps), "back": lambda: _move(-1, n_steps),
             "step": lambda: _next_step(n_steps), "play": _toggle_play, "reset": _reset}
    for action in screen.take_keys("training"):
        moves[action]()


def stepper(n_steps: int) -> None:
    # buttons as wide as their labels, wrapping onto a second line on a narrow screen: never cut to "P…"
    with st.container(horizontal=True, gap="small", vertical_alignment="center", key="stepper"):
        st.button("◀ Back", on_click=_move, args=(-1, n_steps), shortcut="Left", help="Previous stage")
        st.button("Next ▶", on_click=_move, args=(1, n_steps), shortcut="Right", type="primary",
                  help="Next stage; after the last stage, the next step")
        st.button("Step", icon=":material/skip_next:", on_click=_next_step, args=(n_steps,), shortcut="N",
                  help="Next optimisation step, same stage")
        playing = st.session_state.get("playing", False)
        # one key whatever the label: a button that changed its label would be a new widget, and P would
        # then press a button the server no longer knows (play could not be paused)
        st.button("Pause" if playing else "Play", icon=":material/pause:" if playing else ":material/play_arrow:",
                  on_click=_toggle_play, shortcut="P", key="play", help="Animate through the steps")
        st.button("Reset", icon=":material/restart_alt:", on_click=_reset, shortcut="Home", help="Back to step 1")
        st.caption("Keys: ← → stages · N next step · P play/pause · Home reset", width="content")
    if n_steps > 1:
        st.slider("Step t", 1, n_steps, key="step", persist_state="session",
                  help="Scrub through the run: it was trained once, and moving this only replays the step shown "
                       "from the nearest stored state; nothing is trained again.")
    st.radio("Stage", STAGES, key="stage", horizontal=True, format_func=text.STAGE_TITLES.get,
             persist_state="session", label_visibility="collapsed")


def play_tick(n_steps: int) -> None:
    """While playing, wait a moment and rerun one step further; stop at the end."""
    ss = st.session_state
    if not ss.get("playing"):
        return
    if ss["step"] >= n_steps:
        ss["playing"] = False
        return
    run_gate.sleep(PLAY_INTERVAL_S)  # another student's run goes meanwhile
    ss["_advance"] = True
    st.rerun()


# --- the five stage views ------------------------------------------------------------------------

def _row(items, key: str) -> None:
    """Heatmaps side by side, one cell size: (matrix, title, kwargs) each."""
    ui.matrix_row(items, key)


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
        f = lambda name: getattr(rec, f"{name}_{p}")  # noqa: E731
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
