"""Real model: LoRA adapts a small pre-trained transformer to a new task, and the paper's questions are run live.

The run controls sit in the Fine-tune tab; the other tabs use the same settings. Training happens on
the server's worker thread (lora_app.compute.jobs); this script only asks for runs and draws what has finished.
"""
import streamlit as st

from lora_app import figures, text
from lora_app.compute import real as compute
from lora_app.config.real import SWEEP_CHOICES, real_config, real_url, sanitize_real
from lora_app.server import navigation
from lora_app.views import real as views
from lora_app.widgets import charts, notices, sections, url_state
from lora_app.widgets.follow_run import train_flow, train_state
from lora_app.widgets.real_settings import run_controls, sequence_input, widget_values
from lora_core.tiny import PERMUTATION

navigation.entry_guard()
url_state.page_state("real", sanitize_real)
t = text.real

st.title("LoRA on a real transformer")
notices.show("real")
st.markdown(t.INTRO)

values = widget_values()
cfg, problems = real_config(values, st.session_state.get("_real_last_good"))
if not problems:
    st.session_state["_real_last_good"] = cfg
url_state.set_page_url(real_url(values))
view, where = sections.sections("real", t.SECTIONS)


def show_problems() -> None:
    for p in problems:
        st.error(p, icon=":material/error:")


def the_model() -> None:
    st.markdown(t.MODEL_NOTE)
    views.model_view()
    st.markdown(t.tasks_note(PERMUTATION))
    sequence_input()
    show_problems()
    out = compute.outputs(cfg, None)
    charts.chart(st, figures.real.sequence_grid({"base model": out.base}, sorted(cfg.tokens), tokens=list(cfg.tokens),
                                                target_label="sorted (the base task)"), key="fig_real_model_seq")
    st.caption(f"Base accuracy on the new tasks, before any adaptation: reverse {t.pct(compute.base_accuracy('reverse'))}, "
               f"permute {t.pct(compute.base_accuracy('permute'))}.")


def fine_tune() -> None:
    st.markdown(t.FINETUNE_NOTE)
    run_controls()
    show_problems()
    s = cfg.settings
    pair = compute.pair_settings(s)

    def live(snap, i) -> None:  # the LoRA run as it trains, full fine-tuning's beside it once that is stored
        first, second = compute.pair_so_far(pair, snap.live)
        if first is not None:
            charts.chart(st, views.curves_figure(first, second, s.steps, width=charts.column_width(1.0)),
                         key=f"fig_real_live_{i}")
    flow = train_state(pair, "real_train", "real_stop")
    runs = train_flow(flow, "Train", live)
    if runs is None:
        return
    if None not in runs:
        results(runs[0], runs[-1])
    elif flow.held is None:
        st.info("Press **Train** to run full fine-tuning: every weight trains." if s.full else
                f"Press **Train** to run these settings: {'DoRA' if s.dora else 'LoRA'} first, then full fine-tuning "
                "as the baseline.", icon=":material/model_training:")
    elif flow.held.live is not None and flow.held.live.settings == s:
        charts.chart(st, views.curves_figure(flow.held.live, None, s.steps, width=charts.column_width(1.0)),
                     key="fig_real_stopped")


def results(lora_run, full_run) -> None:
    s = lora_run.settings
    charts.chart(st, views.curves_figure(lora_run, None if s.full else full_run, s.steps,
                                         width=charts.column_width(1.0)), key="fig_real_curves")
    views.numbers_view(lora_run, full_run)
    sequence_input()
    charts.chart(st, views.sequence_figure(cfg, lora_run), key="fig_real_seq")
    if not s.full:
        views.adapter_download(lora_run)


def experiment(settings: tuple, button: str, key: str, draw) -> None:
    """A grid of runs: what has finished at once; the button trains the rest, the table filling as runs finish."""
    flow = train_state(settings, key)
    if train_flow(flow, button, lambda snap, i: draw(i), help=t.runs_left(flow.missing, len(settings)),
                  failed="A run failed") is not None:
        draw("final")


def where_it_goes() -> None:
    g = compute.grid_table(cfg)
    ffn = g.rows.index("FFN")
    st.markdown(t.where_note(g.trainable[0], g.ranks[ffn], g.trainable[ffn], compute.ffn_shapes(), cfg.settings.dora))
    show_problems()
    experiment(compute.grid_settings(cfg), "Run the grid", "real_grid_run",
               lambda tag: views.grid_view(compute.grid_table(cfg), key=f"fig_real_grid_{tag}"))


def how_small() -> None:
    st.markdown(t.RANK_NOTE)
    st.segmented_control("Placement", SWEEP_CHOICES, key="real_sweep", required=True, persist_state="session",
                         format_func=lambda v: compute.placement_label(tuple(v.split("+"))))
    show_problems()
    experiment(compute.sweep_settings(cfg), "Run the sweep", "real_sweep_run",
               lambda tag: views.sweep_view(compute.sweep_table(cfg), compute.placement_label(cfg.sweep),
                                            key=f"fig_real_sweep_{tag}"))
    st.subheader("The rank of a real update")
    st.markdown(t.SPECTRUM_NOTE)
    s = cfg.settings
    full_run = compute.run(compute.full_settings(s))
    if full_run is None:
        st.info("Train the Fine-tune tab's settings first: this part reads its full fine-tuning run and its LoRA run.",
                icon=":material/info:")
        return
    views.spectra_view(None if s.full else compute.run(s), full_run, s.r if not s.full else 4)


def the_family() -> None:
    st.markdown(t.FAMILY_NOTE)
    show_problems()
    experiment(compute.family_settings(cfg), "Run the family", "real_family_run",
               lambda tag: views.family_view(compute.family_table(cfg), cfg.settings.task, key=f"fig_real_family_{tag}"))


def before_after() -> None:
    st.markdown(t.BEFORE_NOTE)
    sequence_input()
    show_problems()
    run = compute.run(cfg.settings)
    if run is None:
        st.info("Train the Fine-tune tab's settings to see the adapted model's maps beside the base model's.",
                icon=":material/info:")
    views.attention_view(cfg, run)
    charts.chart(st, views.sequence_figure(cfg, run), key="fig_real_before_seq")


with where:
    {"model": the_model, "finetune": fine_tune, "where": where_it_goes, "rank": how_small, "family": the_family,
     "before": before_after}[view]()
