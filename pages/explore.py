"""Explore: the seed's matrices as heatmaps, Q without and with LoRA, one cell broken down, the counts.

The page is five parts in the order of the lesson; only the open part runs and draws.
"""
import streamlit as st

from lora_app import figures, text
from lora_app.compute import colour_ranges, explore_arrays
from lora_app.server import navigation
from lora_app.text import latex
from lora_app.widgets import adapter_files, cells, charts, matrix_editor, notices, sections, url_state
from lora_core import param_counts

navigation.entry_guard()

matrix_editor.apply_pending_edits()
cfg = url_state.current_config()
res = explore_arrays(cfg)

st.title("LoRA inside attention: the query projection")
notices.show("explore")
st.markdown(text.EXPLORE_INTRO)
st.latex(text.EQUATION)


def matrices() -> None:
    st.caption(text.MATRICES_NOTE)
    z_ab = figures.symmetric_range(res.A, res.B)
    charts.matrix_row([(res.X, "X", {}), (res.W, "W_Q", {"role": "frozen"}), (res.A, "A_Q", {"role": "trainable", "zmax": z_ab}),
                   (res.B, "B_Q", {"role": "trainable", "zmax": z_ab})], ["fig_X", "fig_W_Q", "fig_A_Q", "fig_B_Q"])


def update() -> None:
    st.caption(text.DELTA_NOTE)
    z_w = colour_ranges(cfg, res).w
    titles = ("W_Q", "ΔW_Q = s·A_Q·B_Q", "W_Q + ΔW_Q")
    charts.matrix_row([(M, title, {"zmax": z_w, "show_scale": title == "W_Q + ΔW_Q"})
                   for M, title in zip((res.W, res.delta_W, res.W_merged), titles)], [f"fig_w_{t}" for t in titles])
    if latex.fits_equation(res.X, res.W, res.A, res.B):
        st.latex(latex.delta_equation(res.A, res.B, res.delta_W, res.scaling))
    else:
        st.caption(f"The equation with its numbers is written out for matrices up to {latex.EQUATION_MAX_SIDE} on a side.")


def q_view() -> None:
    st.caption(text.Q_NOTE)
    i, j = cells.picked_cell(cfg)
    z_q = colour_ranges(cfg, res).q
    titles = ("Q = X·W_Q", "Q = X·(W_Q + ΔW_Q)", "ΔQ = difference")
    keys = [f"fig_q_{title}" for title in titles]
    charts.matrix_row([(M, title, {"zmax": z_q, "cell": (i, j), "clickable": True, "show_scale": title.startswith("ΔQ")})
                   for M, title in zip((res.base, res.q, res.delta_q), titles)], keys,
                  chart_kw=lambda n: dict(selection_mode="points", on_select=cells.cell_click(
                      keys[n], then=lambda: sections.open_section("explore", text.EXPLORE_SECTIONS, "cell"))))
    if latex.fits_equation(res.X, res.W, res.A, res.B):
        st.latex(latex.forward_equation(res.X, res.W_merged, res.q))


def one_cell() -> None:
    st.caption(text.BREAKDOWN_NOTE)
    i, j = cells.picked_cell(cfg)
    cells.cell_inputs(cfg)
    for line in latex.cell_breakdown(res.X, res.W, res.A, res.B, res.scaling, i, j):
        st.latex(line)
    charts.matrix_row([(res.X, "X", {"rows": (i,)}), (res.W, "W_Q", {"role": "frozen", "cols": (j,)})],
                  ["fig_pick_X", "fig_pick_W"])


def count() -> None:
    st.markdown(text.WHY_INTRO)
    c = res.counts
    m = charts.metric_row(4)
    m[0].metric("Frozen in W_Q (d·k)", f"{c.full:,}")
    m[1].metric("Trained by LoRA, r·(d + k)", f"{c.lora:,}", f"{c.lora - c.full:+,} vs full fine-tuning",
                delta_color="inverse")
    m[2].metric("Trained by full fine-tuning", f"{c.full:,}")
    m[3].metric("Break-even rank d·k/(d + k)", f"{c.break_even:.3g}")
    seed_c, big = param_counts(5, 3, 2), param_counts(4096, 4096, 8)
    st.info(
        f"**A correction to the blog post.** At its size, 5×3 with r = 2, LoRA trains A_Q (5×2 = 10) and "
        f"B_Q (2×3 = 6): **{seed_c.lora} numbers, where full fine-tuning trains {seed_c.full}**. Below the "
        f"break-even rank {seed_c.break_even:.3g} LoRA would be smaller, and r = 1 is the only such rank. The saving "
        f"is real only for large matrices: a 4096×4096 projection at r = 8 trains {big.lora:,} numbers instead of "
        f"{big.full:,} ({big.lora / big.full:.2%}).", icon=":material/edit_note:")
    st.markdown(text.counts_sentence(cfg, c))


view, where = sections.sections("explore", text.EXPLORE_SECTIONS)
with where:
    {"matrices": matrices, "update": update, "q": q_view, "cell": one_cell, "count": count}[view]()

with st.expander("Edit the matrices", key="explore_edit", on_change="rerun") as edit:
    if edit.open:
        matrix_editor.matrix_editors({"X": res.X, "W": res.W, "A": res.A, "B": res.B})

with st.expander("Save or load the adapter (PEFT format)", key="explore_adapter", on_change="rerun") as adapter:
    if adapter.open:
        st.caption("The saved zip opens in the real library: `PeftModel.from_pretrained(model, folder)` on a model "
                   "whose `q_proj` holds W_Qᵀ gives the Q shown above. A loaded adapter replaces A_Q, B_Q, r and α here.")
        adapter_files.download_button(res.A, res.B, cfg, "Download A_Q and B_Q as a PEFT adapter", key="adapter_explore")
        adapter_files.upload_box(cfg)
