"""Rank: the singular values of ΔW = s·A·B, a full-rank target against its best rank-r copy, and the cost in r.

The target's controls sit on top; the page is four parts, and only the open part runs and draws.
"""
import streamlit as st

from lora_app import figures, text
from lora_app.compute.rank import delta_spectrum, edited_target, rank_counts, target_copy
from lora_app.config.rank import DECAY_MAX, DECAY_MIN, DECAY_STEP, EDITABLE_MAX_SIDE, RankConfig, sanitize_rank, target_edits
from lora_app.server import navigation
from lora_app.widgets import charts, matrix_editor, notices, sections, url_state

navigation.entry_guard()

url_state.page_state("rank", sanitize_rank)
matrix_editor.apply_pending_edits({"dW": "ΔW*"})
t = text.rank
example = url_state.current_config()
d, k, r = example.d, example.k, example.r
edits = target_edits(st.session_state.get("edits", {}).get("dW", {}), d, k)

st.title("Rank: what a rank-r update can and cannot reach")
notices.show("rank")
st.markdown(t.INTRO)

with st.container(border=True):
    st.markdown("**The update a task wants, ΔW\\***")
    st.caption(t.TARGET_NOTE)
    st.slider("decay of ΔW*'s singular values", DECAY_MIN, DECAY_MAX, step=DECAY_STEP, key="decay",
              persist_state="session", help=t.DECAY_HELP)
    with st.expander("Edit ΔW* cell by cell", expanded=False):
        if max(d, k) > EDITABLE_MAX_SIDE:
            st.info(f"ΔW* is {d}×{k}; it can be edited up to {EDITABLE_MAX_SIDE} on a side. Make d or k smaller.")
        else:
            st.caption(t.EDIT_NOTE)
            # only the parts that show ΔW* need it at large sizes; here it is small
            matrix_editor.matrix_editors({"dW": edited_target(d, k, example.seed, st.session_state["decay"], edits)},
                              {"dW": "ΔW*"}, max_side=EDITABLE_MAX_SIDE)
cfg = RankConfig(example, st.session_state["decay"], edits)
url_state.set_page_url(cfg.url_params())


def spectrum() -> None:
    res = delta_spectrum(example)  # each part computes only what it shows
    st.caption(t.SPECTRUM_NOTE)
    cols = st.columns([1, 2])
    charts.matrix_row([(res.delta_W, "ΔW = s·A·B", {})], ["fig_delta"], where=cols[0],
                  width=charts.column_width(1 / 3))
    charts.chart(cols[1], figures.rank.singular_value_bars(res.delta_sigma, r, "Singular values of ΔW", tol=res.delta_tol,
                                                       kept=f"σ₁ … {t.sigma_name(r)}: within rank r",
                                                       dropped="beyond r: zero up to rounding"),
             key="fig_delta_sigma")
    st.markdown(t.spectrum_sentence(res.delta_sigma, res.delta_rank, r, d, k))


def best_copy() -> None:
    res = target_copy(cfg)
    z = res.z_copy  # the same for every r: ΔW* is not redrawn when r moves
    titles = ("ΔW* (the update wanted)", f"best rank-{r} approximation", "what rank r misses")
    charts.matrix_row([(M, title, {"zmax": z, "show_scale": title.startswith("what")})
                   for M, title in zip((res.target, res.approx, res.target - res.approx), titles)],
                  [f"fig_{title}" for title in titles])
    relative_error(res)


def error() -> None:
    res = target_copy(cfg)
    cols = st.columns(2)
    charts.chart(cols[0], figures.rank.singular_value_bars(res.target_sigma, r, "Singular values of ΔW*",
                                                       kept="kept by the truncated SVD", dropped="dropped: out of reach"),
             key="fig_target_sigma")
    charts.chart(cols[1], figures.rank.error_curve(res.ranks, res.rank_errors, r), key="fig_error_curve")
    relative_error(res)


def relative_error(res) -> None:
    st.latex(rf"\frac{{\lVert \Delta W^* - \Delta W^*_{{{r}}} \rVert_F}}{{\lVert \Delta W^* \rVert_F}}"
             rf"= \sqrt{{\frac{{\sum_{{i > {r}}} \sigma_i^2}}{{\sum_i \sigma_i^2}}}} = {res.rel_error:.4f}"
             rf"\quad ({100 * res.rel_error:.1f}\%)")


def cost() -> None:
    res = rank_counts(d, k, r)
    st.caption(t.COUNT_NOTE)
    charts.chart(st, figures.rank.param_count_curve(res.ranks, res.lora_counts, res.full_count, res.break_even, r),
             key="fig_counts")
    lora_now = int(res.lora_counts[r - 1])
    st.markdown(f"At {d}×{k} and r = {r}, LoRA trains **{lora_now:,}** numbers and full fine-tuning "
                f"**{res.full_count:,}** ({lora_now / res.full_count:.1%}). The break-even rank is **{res.break_even:.4g}**.")


view, where = sections.sections("rank", t.SECTIONS)
with where:
    {"spectrum": spectrum, "copy": best_copy, "error": error, "cost": cost}[view]()
