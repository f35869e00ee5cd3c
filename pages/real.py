"""Real model: LoRA adapts a small pre-trained transformer to a new task, and the paper's questions are run live.

The run controls sit in the Fine-tune tab; the other tabs use the same settings. Training happens on
the server's worker thread (lora_app.compute.jobs); this script only asks for runs and draws what has finished.
"""
import numpy as np
import streamlit as st

from lora_app import figures, text
from lora_app.compute import jobs
from lora_app.widgets import charts
from lora_app.server import navigation
from lora_app.widgets import url_state
from lora_app.widgets import sections
from lora_app.widgets import notices
from lora_app.server.sessions import session_id
from lora_app.widgets.follow_run import clear_stop, follow, stopped_note, take_stop
from lora_app.compute import real as compute
from lora_app.config.real import (
    LAYER_CHOICES, LORA_KEYS, LR_CHOICES, RANK_MAX, STEP_CHOICES, SWEEP_CHOICES, TARGETS, WIDGET_KEYS, ALPHA_MAX, ALPHA_MIN,
    real_config, real_url, sanitize_real,
)
from lora_app.config.real import SEED_MAX
from lora_core.adapter import adapters_zip_bytes
from lora_core.finetune import HELD_OUT, TARGET_LABELS
from lora_core.tiny import MODULE_TYPES, PERMUTATION, TASKS, parameter_count, read_config

navigation.entry_guard()
url_state.page_state("real", sanitize_real)
t = text.real

st.title("LoRA on a real transformer")
notices.show_notices()
st.markdown(t.INTRO)


base = compute.base_model()
values = {key: st.session_state[key] for key in WIDGET_KEYS}
cfg, problems = real_config(values, st.session_state.get("_real_last_good"))
if not problems:
    st.session_state["_real_last_good"] = cfg
url_state.set_page_url(real_url(values))
view, where = sections.sections("real", t.SECTIONS)


def show_problems() -> None:
    for p in problems:
        st.error(p, icon=":material/error:")


def sequence_input() -> None:
    st.text_input("Type eight digits for the model to read", key="real_text", max_chars=64,
                  persist_state="session", help="Digits 0 to 9, with or without spaces, e.g. 3 1 4 1 5 9 2 6.")


# --- the model -------------------------------------------------------------------------------

def the_model() -> None:
    st.markdown(t.MODEL_NOTE)
    mcfg, record = read_config()
    rows = []
    for name in MODULE_TYPES:
        d_in, d_out = mcfg.module_shape(name)
        rows.append({"linear layer": name, "W shape (d_in×d_out)": f"{d_in}×{d_out}",
                     "numbers per layer": f"{d_in * d_out:,}", "layers": str(mcfg.layers)})
    total = parameter_count(base)
    m = charts.metric_row(4)
    m[0].metric("Numbers in the model", f"{total:,}")
    m[1].metric("Layers × heads", f"{mcfg.layers} × {mcfg.heads}")
    m[2].metric("Width, FFN width", f"{mcfg.d_model}, {mcfg.d_ff}")
    m[3].metric("Held-out sorting accuracy", t.pct(base_accuracy("sort")))
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption(f"Pre-trained by `scripts/pretrain_tiny.py`: seed {record.get('seed')}, {record.get('steps'):,} "
               f"steps of {record.get('batch')} sequences, {record.get('seconds')} s on {record.get('machine')}. "
               f"The accuracy above is measured now, on {HELD_OUT:,} held-out sequences no training batch "
               f"ever holds.")
    st.markdown(t.tasks_note(PERMUTATION))
    sequence_input()
    show_problems()
    out = compute.outputs(cfg, None)
    charts.chart(st, figures.real.sequence_grid({"base model": out.base}, sorted(cfg.tokens), tokens=list(cfg.tokens),
                                            target_label="sorted (the base task)"),
             key="fig_real_model_seq")
    st.caption(f"Base accuracy on the new tasks, before any adaptation: reverse {t.pct(base_accuracy('reverse'))}, "
               f"permute {t.pct(base_accuracy('permute'))}.")


def base_accuracy(task: str) -> float:
    return compute.base_accuracies(jobs.base_digest())[task]


# --- fine-tune -------------------------------------------------------------------------------

def run_controls() -> None:
    st.segmented_control("New task", ("reverse", "permute"), key="real_task", required=True, persist_state="session",
                         format_func=lambda task: f"{task}: {TASKS[task].split(' (')[0]}")
    st.toggle("Full fine-tuning instead of LoRA (every weight trains)", key="real_full", persist_state="session")
    if not st.session_state["real_full"]:
        st.caption("Adapt these matrices")
        with st.container(horizontal=True, gap="medium"):
            for target in TARGETS:
                st.checkbox(TARGET_LABELS[target] + (" (up and down)" if target == "ffn" else ""), key=LORA_KEYS[target],
                            persist_state="session", width="content")
        cols = st.columns(4)
        cols[0].segmented_control("Layers", LAYER_CHOICES, key="real_layers", required=True, persist_state="session",
                                  format_func=lambda v: "all" if v == "all" else f"layer {v}")
        cols[1].slider("r: rank", 1, RANK_MAX, key="real_r", persist_state="session",
                       help=f"Columns of A and rows of B; at most {RANK_MAX}, the narrow side of every matrix here.")
        cols[2].number_input("α: LoRA alpha", ALPHA_MIN, ALPHA_MAX, step=1.0, key="real_alpha", persist_state="session")
        cols[3].toggle("rsLoRA: s = α/√r", key="real_rslora", persist_state="session")
    cols = st.columns(3)
    cols[0].select_slider("Learning rate", LR_CHOICES, key="real_lr", persist_state="session", format_func=lambda v: f"{v:g}")
    cols[1].select_slider("Steps", STEP_CHOICES, key="real_steps", persist_state="session")
    cols[2].number_input("Seed", 0, SEED_MAX, step=1, key="real_seed", persist_state="session")


def curves_figure(live_or_run, full_or_none, total_steps: int):
    full = None if full_or_none is None else (full_or_none.losses, full_or_none.eval_steps, full_or_none.accuracies)
    return figures.real.run_curves(live_or_run.losses, live_or_run.eval_steps, live_or_run.accuracies, full=full,
                                   total_steps=total_steps, width=charts.column_width(1.0))


def fine_tune() -> None:
    st.markdown(t.FINETUNE_NOTE)
    run_controls()
    show_problems()
    s = cfg.settings
    pair = (s, compute.full_settings(s)) if not s.full else (s,)
    lora_run, full_run = compute.run(s), compute.run(pair[-1])
    job = jobs.job_for(pair)
    take_stop("real_stop", job)
    held = stopped_note("real_stop", pair)
    if lora_run is not None and full_run is not None:
        results(lora_run, full_run)
        return
    job = jobs.job_for(pair)
    running = job is not None and held is None
    # Train stays where it is, greyed while a run goes on, with Stop beside it: nothing on the page moves
    row = st.container(horizontal=True, gap="small", key="real_train_row")
    if row.button("Train", key="real_train", type="primary", icon=":material/play_arrow:", disabled=running):
        clear_stop("real_stop")
        try:
            jobs.submit(pair, session_id())
        except jobs.Busy as e:
            st.error(str(e))
            return
        st.rerun()  # the next run draws Stop, the progress and the live curves
    if not running:
        if held is None:
            st.info("Press **Train** to run these settings: LoRA first, then full fine-tuning as the baseline.",
                    icon=":material/model_training:")
        elif held.live is not None and held.live.settings == s:
            charts.chart(st, curves_figure(held.live, None, s.steps), key="fig_real_stopped")
        return

    def draw(snap, i):
        live, runs = snap.live, [compute.run(x) for x in pair]
        first = runs[0] if runs[0] is not None else (live if live and live.settings == s else None)
        if first is not None:
            second = None if s.full or runs[-1] is None else runs[-1]
            charts.chart(st, curves_figure(first, second, s.steps), key=f"fig_real_live_{i}")
    snap = follow(job, draw, "Training", "real_stop", row)
    if snap.state == "failed":
        st.error(f"The run failed: {snap.error}")
        return
    st.rerun()


def results(lora_run, full_run) -> None:
    s = lora_run.settings
    charts.chart(st, curves_figure(lora_run, None if s.full else full_run, s.steps), key="fig_real_curves")
    m = charts.metric_row(4)
    base_acc = base_accuracy(s.task)
    m[0].metric(f"Held-out accuracy on {s.task}", t.pct(lora_run.accuracy), f"{100 * (lora_run.accuracy - base_acc):+.1f} points "
                "from the base", delta_color="off")
    m[1].metric("Trained numbers", f"{lora_run.trainable:,}", f"{lora_run.trainable / lora_run.total:.1%} of "
                f"{lora_run.total:,}", delta_color="off")
    if not s.full:
        size = len(adapters_zip_bytes(lora_run.adapters, r=s.r, alpha=s.alpha, rslora=s.rslora))
        m[2].metric("Adapter on disk (PEFT zip)", f"{size / 1024:.1f} kB")
    m[3].metric("Full fine-tuning's accuracy", t.pct(full_run.accuracy))
    rows = [{"": "LoRA" if not s.full else "full fine-tuning", "wall time": f"{lora_run.wall_s:.2f} s",
             "peak memory": f"{lora_run.peak_bytes / 1e6:.2f} MB", "trained numbers": f"{lora_run.trainable:,}"}]
    if not s.full:
        rows.append({"": "full fine-tuning", "wall time": f"{full_run.wall_s:.2f} s",
                     "peak memory": f"{full_run.peak_bytes / 1e6:.2f} MB", "trained numbers": f"{full_run.trainable:,}"})
    st.table(rows)
    st.caption(f"Measured on this server's {lora_run.device} in {lora_run.dtype}, {s.steps} steps each. Peak memory: "
               f"{lora_run.memory_how}.")
    sequence_input()
    out = compute.outputs(cfg, lora_run)
    charts.chart(st, figures.real.sequence_grid({"base model": out.base, "adapted model": out.adapted}, out.target,
                                            tokens=list(cfg.tokens), target_label=f"right answer ({s.task})"),
             key="fig_real_seq")
    if not s.full:
        st.download_button("Download the adapter (PEFT folder, zipped)", adapters_zip_bytes(
            lora_run.adapters, r=s.r, alpha=s.alpha, rslora=s.rslora), file_name=f"{s.key()}.zip",
            mime="application/zip", icon=":material/download:", on_click="ignore")
        st.caption("Load it with `PeftModel.from_pretrained(base, folder)` on `lora_core.tiny.load_base_model()`.")


def held_settings(key: str):
    return st.session_state.get(f"_{key}_stop_stopped", (None,))[0]


# --- experiments -----------------------------------------------------------------------------

def experiment(settings: tuple, button: str, key: str, draw_table) -> None:
    """A grid of runs: draw what has finished; a button trains the rest, filling the table as runs finish."""
    job = jobs.job_for(settings)
    take_stop(f"{key}_stop", job)
    held = stopped_note(f"{key}_stop", settings)
    job = jobs.job_for(settings)
    missing = [s for s in settings if compute.run(s) is None]
    running = job is not None and (held is None or job.settings != held_settings(key))
    row = st.container(horizontal=True, gap="small", key=f"{key}_row")
    if missing or running:
        if row.button(button, key=key, type="primary", icon=":material/play_arrow:", disabled=running,
                      help=f"{len(missing)} of {len(settings)} runs still to train; finished ones are kept."):
            clear_stop(f"{key}_stop")
            try:
                jobs.submit(settings, session_id())
                st.rerun()
            except jobs.Busy as e:
                st.error(str(e))
    if running:
        snap = follow(job, lambda snap, i: draw_table(i), "Training", f"{key}_stop", row)
        if snap.state == "failed":
            st.error(f"A run failed: {snap.error}")
        else:
            st.rerun()
        return
    draw_table("final")


def where_it_goes() -> None:
    g0 = compute.grid_table(cfg)
    ffn = g0.rows.index("FFN")
    mcfg = base.cfg
    st.markdown(t.where_note(g0.trainable[0], g0.ranks[ffn], g0.trainable[ffn],
                             " and ".join("×".join(map(str, mcfg.module_shape(m))) for m in ("up_proj", "down_proj"))))
    show_problems()

    def table(i) -> None:
        g = compute.grid_table(cfg)
        labels = [f"{row} · r = {r}" if r else row for row, r in zip(g.rows, g.ranks)]
        charts.chart(st, figures.real.placement_grid(labels, g.tasks, g.accuracy, g.trainable, width=charts.column_width(1.0)),
                 key=f"fig_real_grid_{i}")
        sentence = t.grid_sentence(g.rows, g.tasks, g.accuracy)
        if sentence:
            st.markdown(sentence)
        else:
            st.caption(f"{g.finished} of {g.total} runs finished.")
    experiment(compute.grid_settings(cfg), "Run the grid", "real_grid_run", table)


def how_small() -> None:
    st.markdown(t.RANK_NOTE)
    st.segmented_control("Placement", SWEEP_CHOICES, key="real_sweep", required=True, persist_state="session",
                         format_func=lambda v: compute.placement_label(tuple(v.split("+"))))
    show_problems()
    label = compute.placement_label(cfg.sweep)

    def table(i) -> None:
        sw = compute.sweep_table(cfg)
        charts.chart(st, figures.real.rank_curve(sw.ranks, sw.accuracy, full=sw.full or None, width=charts.column_width(1.0)),
                 key=f"fig_real_sweep_{i}")
        sentence = t.sweep_sentence(sw.ranks, sw.accuracy, sw.full, label)
        if sentence:
            st.markdown(sentence)
        else:
            st.caption(f"{sw.finished} of {sw.total} runs finished.")
    experiment(compute.sweep_settings(cfg), "Run the sweep", "real_sweep_run", table)
    st.subheader("The rank of a real update")
    st.markdown(t.SPECTRUM_NOTE)
    s = cfg.settings
    full_run = compute.run(compute.full_settings(s))
    lora_run = None if s.full else compute.run(s)
    if full_run is None:
        st.info("Train the Fine-tune tab's settings first: this part reads its full fine-tuning run and its LoRA run.",
                icon=":material/info:")
        return
    r = s.r if not s.full else 4
    spectra = compute.spectra(lora_run, full_run, r)
    st.markdown(t.energy_sentence(r, [(x.name, x.full_energy, x.random_energy) for x in spectra]))
    shown = [x for x in spectra if x.lora_sigma is not None][:2] or spectra[:2]
    box = st.container(horizontal=True, gap="small")
    for x in shown:
        charts.chart(box, figures.real.update_spectrum(x.full_sigma, x.lora_sigma, r, x.name,
                                                   width=min(520, charts.column_width(0.5))), key=f"fig_real_sv_{x.name}",
                 width="content")
    st.dataframe([{"matrix": x.name, f"full fine-tuning: top {r}": t.pct(x.full_energy),
                   f"LoRA: top {r}": "not adapted" if x.lora_energy is None else t.pct(x.lora_energy),
                   f"random matrix: top {r}": t.pct(x.random_energy)} for x in spectra], hide_index=True, width="stretch")


def before_after() -> None:
    st.markdown(t.BEFORE_NOTE)
    sequence_input()
    show_problems()
    s = cfg.settings
    run = compute.run(s)
    if run is None:
        st.info("Train the Fine-tune tab's settings to see the adapted model's maps beside the base model's.",
                icon=":material/info:")
    before, after = compute.attention_maps(cfg, run)
    labels = [str(d) for d in cfg.tokens]
    changes = []
    for layer, maps in enumerate(before):
        for head in range(maps.shape[0]):
            items = [(maps[head], f"layer {layer + 1}, head {head + 1}: base", {"zmax": 1.0, "decimals": 2,
                      "row_labels": labels, "col_labels": labels})]
            if after is not None:
                items.append((after[layer][head], f"layer {layer + 1}, head {head + 1}: adapted",
                              {"zmax": 1.0, "decimals": 2, "row_labels": labels, "col_labels": labels}))
                changes.append((f"layer {layer + 1}, head {head + 1}",
                                float(0.5 * np.abs(after[layer][head] - maps[head]).sum(-1).mean())))
            charts.matrix_row(items, f"fig_real_att_{layer}_{head}")
    if changes:
        st.markdown(t.attention_sentence(changes))
    out = compute.outputs(cfg, run)
    rows = {"base model": out.base} | ({"adapted model": out.adapted} if out.adapted is not None else {})
    charts.chart(st, figures.real.sequence_grid(rows, out.target, tokens=list(cfg.tokens),
                                            target_label=f"right answer ({s.task})"),
             key="fig_real_before_seq")


with where:
    {"model": the_model, "finetune": fine_tune, "where": where_it_goes, "rank": how_small,
     "before": before_after}[view]()
