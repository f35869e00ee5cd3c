"""Training: forward, backward with W frozen, and AdamW on A and B only, one stage at a time.

The settings sit on top; the run is shown in three parts, and only the open part runs and draws.
"""
import streamlit as st

from lora_app import figures
from lora_app.compute import training_run
from lora_app.config import sanitize_training
from lora_app.server import navigation
from lora_app.text import training as text
from lora_app.views import training as training_view
from lora_app.widgets import adapter_files, charts, matrix_editor, notices, screen, sections, stepper, url_state
from lora_app.widgets.training_settings import set_steps, settings_row, steps_cap, training_config

navigation.entry_guard()


def step_view(run, cfg, ex) -> None:
    stepper.before_widgets(run.n_steps)
    stepper.stepper(run.n_steps)
    t, stage = st.session_state["step"], st.session_state["stage"]
    if run.message:
        st.warning(run.message, icon=":material/warning:")
    training_view.stage_view(run, cfg, t, stage)
    adapter_files.download_button(run.at("A", t), run.at("B", t), ex, f"Download A_Q and B_Q after step {t} as a PEFT adapter",
                               key="adapter_training")
    stepper.play_tick(run.n_steps)


def rank_verdict(run, cfg, ex) -> str:
    """What rank r can reach for this T, from the floor the run computed (true also for an edited T)."""
    reachable = run.floor <= 1e-12 * max(float(run.losses[0]), 1e-300)
    if not cfg.target_edits:
        if ex.r >= cfg.rstar:
            return "r ≥ r*, so the adapter can represent ΔW* and the loss can fall to zero."
        return f"r < r*, so no rank-{ex.r} adapter can reach T: the loss cannot go below {run.floor:.3g}."
    if reachable:
        return f"T has been edited, and a rank-{ex.r} adapter can still reach it: the loss can fall to zero."
    return (f"T has been edited, so ΔW* no longer describes it: the lowest loss any rank-{ex.r} adapter can reach "
            f"is {run.floor:.3g}.")


def loss_view(run, cfg, ex) -> None:
    t = min(max(int(st.session_state.get("step", 1)), 1), run.n_steps)
    if run.message:
        st.warning(run.message, icon=":material/warning:")
    if cfg.init != "seed":
        st.markdown(text.zero_b_lesson(cfg.lr, cfg.wd))
    st.markdown(text.RANK_LESSON.format(rstar=cfg.rstar, r=ex.r, verdict=rank_verdict(run, cfg, ex)))
    charts.chart(st, figures.loss_curve(run.losses, run.full_losses, t, lora_count=run.lora_count,
                                    full_count=run.full_count, floor=run.floor,
                                    width=screen.current().content_width()), key="loss_curve")
    if run.full_message:
        st.caption(f"Full fine-tuning: {run.full_message}")


def task_view(run, cfg, ex) -> None:
    st.caption(text.TASK_NOTE.format(rstar=cfg.rstar))
    charts.matrix_row([(run.delta_W_star, f"ΔW* (rank {cfg.rstar})", {}), (run.T, "target T = X·(W_Q + ΔW*)", {})],
                  ["dw_star", "target"])
    st.caption("Edit T below to set any target you like; the floor line on the loss curve then shows what rank r can reach.")
    matrix_editor.matrix_editors({"T": run.T}, {"T": "T"})


ex = url_state.current_config()
url_state.page_state("training", lambda raw: sanitize_training(raw, min(ex.d, ex.k)))
matrix_editor.apply_pending_edits({"T": "T"})

st.title("Training LoRA, one stage at a time")
notices.show("training")
screen.listen()  # the stepper's keys count from the moment the page is drawn
st.markdown(text.TRAINING_INTRO)
with st.container(border=True):
    refused = settings_row(ex)
for message in refused:  # each names the value sent; the run below uses the last good one
    notices.add(message, kind="error")
cfg, problem = training_config(ex)

run = None if problem else training_run(cfg)
if problem:
    cap = steps_cap(ex)
    st.warning(f"Nothing was trained: {problem}.", icon=":material/timer:")
    st.button(f"Run the largest that fits ({cap} steps)", type="primary", icon=":material/play_arrow:",
              on_click=set_steps, args=(cap,), key="fit_steps")
elif run.n_steps == 0:
    st.warning(f"{run.message} Nothing to step through.", icon=":material/warning:")
else:
    view, where = sections.sections("training", text.SECTIONS)
    with where:
        {"step": step_view, "loss": loss_view, "task": task_view}[view](run, cfg, ex)

url_state.set_page_url({**(cfg.url_params() if cfg else {}), "step": str(st.session_state.get("step", 1)),
                 "stage": st.session_state.get("stage", "forward")})
