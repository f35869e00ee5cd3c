"""Attention: one attention layer on the current X, LoRA on any of W_Q, W_K, W_V, W_O and the FFN.

The controls sit on top; the layer is five parts, and only the open part runs and draws.
"""
import numpy as np
import streamlit as st

from lora_app import figures, text
from lora_app.compute.attention import attention_arrays, attention_ranges, head_columns, param_table
from lora_app.config.attention import (
    HEAD_CHOICES,
    LORA_KEYS,
    WIDGET_KEYS,
    attention_config,
    attention_url,
    fit_to_example,
    max_heads,
    sanitize_attention,
)
from lora_app.server import navigation
from lora_app.widgets import charts, notices, sections, url_state

navigation.entry_guard()

url_state.page_state("attention", sanitize_attention)
t = text.attention

st.title("Where LoRA goes: inside one attention layer")
notices.show("attention")
st.markdown(t.INTRO)
st.latex(t.PROJECTION_EQUATION)
st.latex(t.HEAD_EQUATION)

st.subheader("Put an adapter on")
example = url_state.current_config()
values, notes = fit_to_example({key: st.session_state[key] for key in WIDGET_KEYS}, example.k)
st.session_state.update(values)  # before the widgets exist, so they show the clamped values
with st.container(horizontal=True, gap="medium"):
    for target, label in {"q": "W_Q (query)", "k": "W_K (key)", "v": "W_V (value)",
                          "o": "W_O (output)", "ffn": "FFN (both layers)"}.items():
        st.checkbox(label, key=LORA_KEYS[target], persist_state="session", width="content")
cols = st.columns([2, 2, 3])
cols[0].segmented_control("Heads", HEAD_CHOICES[:max_heads(example.k)], key="heads", required=True,
                          persist_state="session")
if st.session_state["heads"] > 1:
    cols[1].segmented_control("Head shown", range(1, st.session_state["heads"] + 1), key="head", required=True,
                              persist_state="session")
cols[2].toggle("Causal mask (GPT-style: each token sees only earlier ones)", key="causal", persist_state="session")
cfg = attention_config(example, {key: st.session_state[key] for key in WIDGET_KEYS})
head = min(st.session_state["head"], cfg.heads)
for note in notes:
    notices.add(note, kind="info")
res = attention_arrays(cfg)
url_state.set_page_url(attention_url(cfg, head))
h, dk = head - 1, res.d_head
st.caption(t.SETUP_NOTE)


def qkv() -> None:
    st.caption(t.PROJECTIONS_NOTE)
    tr = res.adapted
    z = attention_ranges(cfg, res).qkv[h]  # the same for every r
    items = []
    for M, name, p in zip((tr.q, tr.k, tr.v), "QKV", "qkv"):
        how = f"X·(W_{name} + s·A_{name}·B_{name})" if p in cfg.projections else f"X·W_{name}"
        items.append((head_columns(M, h, dk), f"{name}_{head} = {how}", {"zmax": z}))
    charts.matrix_row(items, ["fig_Q", "fig_K", "fig_V"])


def scores() -> None:
    st.caption(t.SCORES_NOTE + (" " + t.CAUSAL_NOTE if cfg.causal else ""))
    tr = res.adapted
    raw = np.where(np.isfinite(tr.scores[h]), tr.scores[h], np.nan)  # the causal mask's −∞ are drawn blank
    charts.matrix_row([figures.attention.attention_item(raw, f"scores Q_{head}·K_{head}ᵀ/√{dk}",
                                                    zmax=float(np.nanmax(np.abs(raw))) or 1.0),
                   figures.attention.attention_item(tr.weights[h], "weights = softmax(scores)")],
                  ["fig_scores", "fig_weights"])


def output() -> None:
    st.caption(t.OUTPUT_NOTE)
    tr = res.adapted
    o_how = "(W_O + s·A_O·B_O)" if "o" in cfg.projections else "W_O"
    charts.matrix_row([(head_columns(tr.context, h, dk), f"head {head} = weights·V_{head}", {}),
                   (res.W["o"], "W_O", {"role": "frozen"}), (tr.out, f"out = [heads]·{o_how}", {})],
                  ["fig_context", "fig_WO", "fig_out"])


def weights_change() -> None:
    st.caption(t.CHANGE_NOTE)
    if "ffn" in cfg.lora:
        st.caption(t.FFN_NOTE)
    pl, ad = res.plain, res.adapted
    of_head = f", head {head}" if cfg.heads > 1 else ""
    diff = ad.weights[h] - pl.weights[h]
    titles = (f"weights without LoRA{of_head}", f"weights with LoRA{of_head}", f"change in the weights{of_head}")
    charts.matrix_row([figures.attention.attention_item(M, title, zmax=zmax, show_scale=title.startswith("change"), decimals=3)
                   for M, title, zmax in zip((pl.weights[h], ad.weights[h], diff), titles,
                                             (1.0, 1.0, figures.symmetric_range(diff) if np.any(diff) else 1.0))],
                  [f"fig_cmp_{title}" for title in titles])


def output_change() -> None:
    st.caption(t.OUTPUT_CHANGE_NOTE)
    if "ffn" in cfg.lora:
        st.caption(t.FFN_NOTE)
    pl, ad = res.plain, res.adapted
    z_out = attention_ranges(cfg, res).out  # the same for every r: the frozen model's output is not redrawn
    titles = ("output without LoRA", "output with LoRA", "change in the output")
    charts.matrix_row([(M, title, {"zmax": z_out, "show_scale": title.startswith("change")})
                   for M, title in zip((pl.out, ad.out, ad.out - pl.out), titles)], [f"fig_cmp_{t}" for t in titles])
    st.caption(f"Checked on every run against `torch.nn.functional.scaled_dot_product_attention`: the largest "
               f"difference between the two is {res.sdpa_error:.1e}, rounding error of the arithmetic.")


def trained() -> None:
    st.caption(t.TABLE_NOTE)
    table = param_table(res.rows)
    layer = table.iloc[-1]
    m = charts.metric_row(3)
    m[0].metric("Trained by LoRA in this layer", f"{layer['trained by LoRA']:,}")
    m[1].metric("Trained by full fine-tuning in this layer", f"{layer['numbers in the matrix']:,}")
    m[2].metric("LoRA's share", f"{layer['trained by LoRA'] / layer['numbers in the matrix']:.2%}")
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        c: st.column_config.NumberColumn(c, format="localized") for c in ("numbers in the matrix", "trained by LoRA")})


view, where = sections.sections("attention", t.SECTIONS)
with where:
    {"qkv": qkv, "scores": scores, "output": output, "change": weights_change, "out_change": output_change,
     "count": trained}[view]()
