"""Scale: LoRA's counts, file sizes and training memory on real models, the paper's figures, and a live benchmark."""
import numpy as np
import streamlit as st

from lora_app import figures, text
from lora_app.compute.device import device_choice
from lora_app.compute.scale import (
    claims_table,
    matrices_table,
    measure_step,
    paper_checks,
    paper_notes,
    paper_table,
    scale_numbers,
)
from lora_app.config.scale import (
    BENCH_DEFAULTS,
    BENCH_RANKS,
    BENCH_REPEATS,
    BENCH_SIZES,
    BENCH_TOKENS,
    PAPER,
    R_CHOICES,
    THROUGHPUT,
    bench_config,
    sanitize_scale,
    scale_config,
)
from lora_app.config.scale import FIELDS as SCALE_FIELDS
from lora_app.server import navigation
from lora_app.views import scale as scale_view
from lora_app.widgets import charts, notices, screen, url_state
from lora_core.scale import MODELS, TARGETS

navigation.entry_guard()

url_state.page_state("scale", sanitize_scale)
t = text.scale
human = figures.scale.human_bytes

st.title("Scale: LoRA on real models")
notices.show("scale")
st.markdown(t.INTRO)

row = st.container(horizontal=True, gap="medium")  # the controls wrap onto a second line on a narrow screen
row.selectbox("Model", MODELS, key="model", format_func=lambda key: MODELS[key].name, persist_state="session",
              width=220)
row.pills("Adapt", TARGETS, selection_mode="multi", key="targets", format_func=t.TARGET_LABELS.get,
          persist_state="session", width="content")
row.select_slider("Rank r (this page's own)", R_CHOICES, key="scale_r", help=t.RANK_HELP, persist_state="session",
                  width=300)
cfg = scale_config({f.name: st.session_state[f.name] for f in SCALE_FIELDS if f.name in st.session_state})
num = scale_numbers(cfg)
url_state.set_page_url(cfg.url_params())
spec = num.spec

st.subheader(f"What LoRA trains in {spec.name} at r = {cfg.r}")
st.caption(f"{spec.name}: hidden width {spec.hidden:,}, {spec.layers} layers, {spec.heads} heads × {spec.head_dim}, "
           f"FFN {spec.ffn:,} ({spec.ffn_kind}), {spec.kv_heads} key/value heads, "
           f"**{spec.base_params:,}** parameters in all.")
if cfg.model == "gpt3-175b":
    paper_total = PAPER["gpt3_full"]
    st.caption(t.GPT3_NOTE.format(total=spec.base_params, paper=paper_total.paper_text,
                                  more=(paper_total.paper - spec.base_params) / 1e6))
if spec.fused_qkv and {"q", "k", "v"} & set(cfg.targets):
    st.caption(t.FUSED_NOTE)
if not cfg.targets:
    st.warning(t.NO_TARGETS, icon=":material/warning:")
m = charts.metric_row(4)
quiet = {"delta_color": "off", "delta_arrow": "off"}  # the second line of each metric is a note, not a change
m[0].metric("Trainable parameters", f"{num.trainable:,}", f"{num.share:.4%} of the model", **quiet)
m[1].metric("Adapter file, fp16", human(num.adapter_fp16), f"fp32: {human(num.adapter_fp32)}", **quiet)
m[2].metric("Whole model file, fp16", human(num.model_fp16), "what full fine-tuning saves per task", **quiet)
m[3].metric("Training memory, LoRA", human(num.memory.lora.total),
            f"{num.memory.ratio:.1f}× less than full's {human(num.memory.full.total)}, as counted below",
            delta_color="off", delta_arrow="off")
if num.matrices:
    table = matrices_table(num, cfg.r)
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        c: st.column_config.NumberColumn(c, format="localized") for c in table.columns[2:]})
vram_full, vram_lora = PAPER["vram_full"], PAPER["vram_lora"]
st.caption(t.MEMORY_NOTE.format(full=vram_full.paper_text, lora=vram_lora.paper_text,
                                ratio=f"{vram_full.paper / vram_lora.paper:.1f}× less"))
st.plotly_chart(figures.scale.memory_bars(num.memory.full._asdict(), num.memory.lora._asdict(),
                                          f"Training memory of {spec.name}", width=screen.current().content_width()),
                key="fig_memory")

st.subheader("Which GPU: the blog's last row, card by card")
scale_view.which_gpu(cfg)

st.subheader("The paper's figures beside this app's")
st.caption(t.PAPER_INTRO)
checks = paper_checks()
for group, title in t.PAPER_GROUPS.items():
    st.markdown(f"**{title}**")
    st.table(paper_table(checks, group), hide_index=True)
    st.markdown("\n".join(f"- {note}" for note in paper_notes(checks, group)))

st.subheader("Measured, not quoted: one training step on this machine")
st.caption(t.BENCH_INTRO)
for key, value in BENCH_DEFAULTS.items():
    st.session_state.setdefault(key, value)
cols = st.columns(5)
for col, key, label, choices in zip(cols, BENCH_DEFAULTS, ("d (rows of W)", "k (columns of W)", "rank r", "n (tokens)",
                                                           "timed steps"),
                                    (BENCH_SIZES, BENCH_SIZES, BENCH_RANKS, BENCH_TOKENS, BENCH_REPEATS)):
    col.select_slider(label, choices, key=key, persist_state="session")
bench = bench_config(st.session_state)
with st.container(horizontal=True, gap="small", vertical_alignment="center"):
    pressed = st.button("Measure", type="primary", icon=":material/timer:", key="bench_go")
    st.button("Cancel", disabled=not pressed, key="bench_cancel")
    st.caption(f"On **{device_choice().label}**. {t.BENCH_CANCEL}", width="stretch")
if pressed:
    st.session_state["bench_running"] = True
    bar = st.progress(0.0, text="warming up")
    result = measure_step(bench, lambda i, total: bar.progress(i / total, text=f"timed step {i} of {total}"))
    bar.empty()
    st.session_state["bench_running"] = False
    st.session_state["bench_result"] = (bench, result)
elif st.session_state.pop("bench_running", False):
    st.warning("The last measurement was cancelled before it finished.", icon=":material/stop_circle:")
if "bench_result" in st.session_state:
    measured, result = st.session_state["bench_result"]
    full, lora = result.full, result.lora
    st.markdown(f"**{measured.d:,}×{measured.k:,} layer, r = {measured.r}, n = {measured.n}: median of "
                f"{measured.repeats} steps.**" + ("" if measured == bench else " The sizes above have changed since: "
                                                 "press Measure to measure them."))
    st.plotly_chart(figures.scale.benchmark_figure(1e3 * np.array(full.step_seconds), 1e3 * np.array(lora.step_seconds),
                                                   full.state_bytes, lora.state_bytes), key="fig_bench")
    st.dataframe(claims_table(result, num, f"{spec.name} at r = {cfg.r}"), hide_index=True, width="stretch")
    if full.peak_bytes is not None:
        st.caption(f"Peak GPU memory during the steps: full fine-tuning {human(full.peak_bytes)}, "
                   f"LoRA {human(lora.peak_bytes)}.")
    st.caption(t.BENCH_CAVEAT.format(**THROUGHPUT))
else:
    st.info("Press **Measure** to time it. Nothing runs until you do.", icon=":material/timer:")
