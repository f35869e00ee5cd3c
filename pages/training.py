"""Training: forward, backward with W frozen, and AdamW on A and B only, one stage at a time."""
import streamlit as st

from lora_app import adapter_ui, figures, stages, ui
from lora_app.compute import training_run
from lora_app.config import sanitize_training
from lora_app.text import training as text
from lora_app.training_settings import settings_row, training_config

ui.entry_guard()

ex = ui.current_config()
ui.page_state("training", lambda raw: sanitize_training(raw, min(ex.d, ex.k)))
ui.apply_pending_edits({"T": "T"})

st.title("Training LoRA, one stage at a time")
ui.show_notices()
st.markdown(text.TRAINING_INTRO)
with st.container(border=True):
    settings_row(ex)
cfg, problem = training_config(ex)

run = None if problem else training_run(cfg)
if problem:
    st.error(f"Nothing was trained: {problem}.", icon=":material/block:")
elif run.n_steps == 0:
    st.warning(f"{run.message} Nothing to step through.", icon=":material/warning:")
else:
    stages.before_widgets(run.n_steps)
    stages.stepper(run.n_steps)
    t, stage = st.session_state["step"], st.session_state["stage"]
    if run.message:
        st.warning(run.message, icon=":material/warning:")
    stages.stage_view(run, cfg, t, stage)
    adapter_ui.download_button(run.at("A", t), run.at("B", t), ex, f"Download A_Q and B_Q after step {t} as a PEFT adapter",
                               key="adapter_training")

    st.subheader("The loss, LoRA against full fine-tuning")
    if cfg.init != "seed":
        st.markdown(text.ZERO_B_LESSON)
    verdict = (f"r ≥ r*, so the adapter can represent ΔW* and the loss can fall to zero."
               if ex.r >= cfg.rstar else
               f"r < r*, so no rank-{ex.r} adapter can reach T: the loss cannot go below {run.floor:.3g}.")
    st.markdown(text.RANK_LESSON.format(rstar=cfg.rstar, r=ex.r, verdict=verdict))
    ui.chart(st, figures.loss_curve(run.losses, run.full_losses, t, lora_count=run.lora_count,
                                       full_count=run.full_count, floor=run.floor), key="loss_curve")
    if run.full_message:
        st.caption(f"Full fine-tuning: {run.full_message}")

    with st.expander("The task: the hidden update ΔW* and the target T"):
        cols = st.columns(2)
        ui.chart(cols[0], figures.matrix_heatmap(run.delta_W_star, f"ΔW* (rank {cfg.rstar})"), key="dw_star")
        ui.chart(cols[1], figures.matrix_heatmap(run.T, "target T = X·(W_Q + ΔW*)"), key="target")
        st.caption("Edit T below to set any target you like; the floor line then shows what rank r can reach.")
        ui.matrix_editors({"T": run.T}, {"T": "T"})
    stages.play_tick(run.n_steps)

ui.set_page_url({**(cfg.url_params() if cfg else {}), "step": str(st.session_state.get("step", 1)),
                 "stage": st.session_state.get("stage", "forward")})
