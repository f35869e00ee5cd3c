"""What the Adapters page draws: the adapters chosen, an adapter's overview, one module, two compared, a merge."""
from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from lora_core.adapters.overview import grid
from lora_core.scale import known_model

from .. import figures
from ..compute import adapters as compute
from ..config.adapters import FIELDS, METRICS
from ..text import adapters as text
from ..widgets import charts
from ..widgets.follow_run import train_flow, train_state
from ..widgets.sections import open_section

METRIC_OF = {"norm": lambda s, k: s.frobenius, "erank": lambda s, k: s.effective_rank,
             "energy": lambda s, k: s.energy(k)}


def open_adapter(first: str) -> None:
    """Go to the Adapters page showing this adapter (from another page's button): the page's controls the session
    has not set yet take their defaults, as a first visit's would, and the URL is not read over them."""
    for f in FIELDS:
        st.session_state.setdefault(f.name, f.default)
    st.session_state["ad_first"] = first
    st.session_state["_url_loaded_adapters"] = True
    open_section("adapters", text.SECTIONS, "overview")
    st.session_state["_url_loaded_view_adapters"] = True
    st.switch_page("pages/adapters.py")


def choose(key: str, label: str, names: list[str]) -> None:
    """A select box of the adapters there are, keeping the current one listed (a link may name one that is gone:
    opening it then says why)."""
    current = st.session_state.get(key)
    options = names + ([current] if current and current not in names else [])
    st.selectbox(label, options, key=key, format_func=compute.label)


def opened_or_reason(name: str, uploads: dict, train_key: str):
    """The adapter, or None with its reason drawn (an example run not trained yet gets the Train button).

    An adapter that cannot be opened is refused with its reason, and the last one this slot opened in this session
    is shown instead: nothing that was on the screen is lost."""
    o = compute.open_adapter(name, uploads)
    good = f"_good_{train_key}"
    if o.adapter is not None:
        st.session_state[good] = name
        return o
    last = st.session_state.get(good)
    if o.missing_run is None and last and last != name:
        kept = compute.open_adapter(last, uploads)
        if kept.adapter is not None:
            st.error(f"{o.problem}. Still showing {compute.label(last)}.", icon=":material/error:")
            return kept
    if o.missing_run is not None:
        settings = compute.example_settings()
        flow = train_state(settings, train_key)
        st.info("The two example adapters are the Real model page's default run on each task. They are not on this "
                "server yet.", icon=":material/model_training:")
        train_flow(flow, "Train the two example runs", lambda snap, i: None, failed="A run failed")
        return None
    st.error(o.problem, icon=":material/error:")
    return None


def adapter_facts(o) -> None:
    a = o.adapter
    c = a.config
    ranks = {m.r for m in a.infos.values()}
    m = charts.metric_row(4)
    m[0].metric("Adapted matrices", f"{len(a.infos):,}")
    m[1].metric("Trained numbers", f"{a.trained:,}")
    m[2].metric("Rank r", str(min(ranks)) if len(ranks) == 1 else f"{min(ranks)}–{max(ranks)}")
    m[3].metric("Stored size", text.size_text(a.file_bytes))
    model = known_model(c.base_model) if c.base_model else None
    facts = [f"lora_alpha {c.alpha:g}", "rsLoRA (s = α/√r)" if c.rslora else "s = α/r",
             *(["DoRA (a magnitude per output column)"] if c.dora else []),
             *(["fan_in_fan_out (GPT-2's Conv1D)"] if c.fan_in_fan_out else []),
             *([f"rank_pattern for {len(c.rank_pattern)} name(s)"] if c.rank_pattern else []),
             *([f"base model `{c.base_model}`"] if c.base_model else [])]
    st.caption(" · ".join(facts))
    if c.dora:
        st.caption("DoRA: each column of W + s·A·B is also rescaled to its length m, which needs the base model's W. "
                   "The figures here are of s·A·B, the update's direction part; m is read and checked.")
    if model is not None:
        st.caption(f"{model.name} has {model.base_params:,} numbers: this adapter trains "
                   f"{a.trained / model.base_params:.3%} of them (Scale's table of models).")
    if a.skipped:
        with st.expander(f"{len(a.skipped)} tensor{'s' if len(a.skipped) != 1 else ''} not read, and why"):
            st.dataframe(pd.DataFrame([{"tensor": s.key, "why": s.reason} for s in a.skipped]), hide_index=True)


def overview(cfg, o) -> None:
    st.markdown(text.OVERVIEW_NOTE)
    adapter_facts(o)
    summ = compute.summaries(o.key, o.adapter)
    cols = st.columns([2, 1])
    cols[0].segmented_control("Colour", list(METRICS), key="ad_metric", format_func=METRICS.get, required=True)
    if cfg.metric == "energy":
        cols[1].slider("top k", 1, max(s.r for s in summ), key="ad_k")
    k = min(cfg.k, max(s.r for s in summ))
    g = grid(summ, lambda s: METRIC_OF[cfg.metric](s, k))
    label = METRICS[cfg.metric].replace("k", str(k)) if cfg.metric == "energy" else METRICS[cfg.metric]
    fmt = (lambda v: f"{v:.0%}") if cfg.metric == "energy" else (lambda v: f"{v:.2g}")
    fig = figures.adapters.module_grid(g.layers, g.kinds, g.values, g.names, title=f"{label} of each adapted matrix",
                                       subtitle="rows: layers · columns: module types · click a cell to open it",
                                       fmt=fmt, zmax=1.0 if cfg.metric == "energy" else None,
                                       width=charts.column_width(1.0), selected=cfg.module or None)
    charts.chart(st, fig, key="fig_ad_overview", selection_mode="points", on_select=_pick_module)
    norms = sorted(summ, key=lambda s: s.frobenius)
    st.markdown(text.overview_sentence(len(summ), o.adapter.trained, o.adapter.file_bytes, {s.r for s in summ},
                                       (norms[-1].name, norms[-1].frobenius), (norms[0].name, norms[0].frobenius),
                                       float(np.median([s.effective_rank for s in summ]))))


def _pick_module() -> None:
    points = (st.session_state.get("fig_ad_overview") or {}).get("selection", {}).get("points", [])
    name = points[0].get("customdata") if points else None
    if isinstance(name, str) and name:
        st.session_state["ad_module"] = name
        open_section("adapters", text.SECTIONS, "module")


def module_name(cfg, o) -> str:
    names = list(o.adapter.infos)
    name = cfg.module if cfg.module in o.adapter.infos else names[0]
    if cfg.module and cfg.module not in o.adapter.infos:
        st.warning(f"This adapter has no module `{cfg.module}`; showing `{name}`.", icon=":material/warning:")
    return name


def module(cfg, o) -> None:
    st.markdown(text.MODULE_NOTE)
    name = module_name(cfg, o)
    st.selectbox("Module", list(o.adapter.infos), index=list(o.adapter.infos).index(name), key="_ad_module_pick",
                 on_change=lambda: st.session_state.update(ad_module=st.session_state["_ad_module_pick"]))
    mod = compute.module_factors(o.adapter, name)
    info = mod.info
    summ = {s.name: s for s in compute.summaries(o.key, o.adapter)}[name]
    m = charts.metric_row(4)
    m[0].metric("Shape of W (d_in × d_out)", f"{info.d_in:,} × {info.d_out:,}")
    m[1].metric("r, s", f"{info.r}, {info.scaling:.4g}")
    m[2].metric("Effective rank", f"{summ.effective_rank:.2f}")
    m[3].metric("Stable rank", f"{summ.stable_rank:.2f}")
    k = min(cfg.k, info.r)
    charts.chart(st, figures.adapters.spectrum_bars(summ.sigma, k, title=f"Singular values of ΔW = s·A·B: {name}",
                                                    width=charts.column_width(1.0)), key="fig_ad_sigma")
    st.caption(f"The top {k} direction{'s hold' if k != 1 else ' holds'} {summ.energy(k):.1%} of ‖ΔW‖²_F "
               f"(‖ΔW‖_F = {summ.frobenius:.4g}); set k on the Overview's energy colour.")
    charts.matrix_row([(mod.A.double().numpy(), "A", {}), (mod.B.double().numpy(), "B", {})], "fig_ad_factors",
                      cell_max=28)


def compare(cfg, first, second) -> None:
    st.markdown(text.COMPARE_NOTE)
    comps = compute.comparison((first.key, second.key), first.adapter, second.adapter)
    if not comps:
        st.warning("The two adapters share no module of the same shape: there is nothing to compare.",
                   icon=":material/warning:")
        return
    at = [phi_at_smaller_r(c) for c in comps]
    g = grid(comps, phi_at_smaller_r)
    charts.chart(st, figures.adapters.module_grid(
        g.layers, g.kinds, g.values, g.names, title="φ at the smaller r, module by module",
        subtitle="1: one adapter's top directions hold the other's; near 0: unrelated", fmt=lambda v: f"{v:.2f}",
        zmax=1.0, width=charts.column_width(1.0)), key="fig_ad_phi_overview")
    best, worst = int(np.argmax(at)), int(np.argmin(at))
    st.markdown(text.compare_sentence(len(comps), float(np.mean(at)), (comps[best].name, at[best]),
                                      (comps[worst].name, at[worst]), float(np.mean([c.cosine for c in comps]))))
    name = cfg.module if cfg.module in {c.name for c in comps} else comps[0].name
    c = next(c for c in comps if c.name == name)
    charts.chart(st, figures.adapters.similarity_grid(c.phi.numpy(), title=f"φ(A₁, A₂, i, j) of {name}",
                                                      first="the first", second="the second",
                                                      width=min(640, charts.column_width(1.0))), key="fig_ad_phi")
    st.caption(f"Cosine of the two ΔW of {name}: {c.cosine:+.3f}. Pick the module on the One module tab.")


def phi_at_smaller_r(c) -> float:
    """φ(A₁, A₂, r, r) with r the smaller of the two ranks: how much of the smaller subspace the other holds."""
    r = min(c.r1, c.r2)
    return float(c.phi[r - 1, r - 1])


def merge(cfg, first, second, uploads: dict, names: list[str]) -> None:
    st.markdown(text.MERGE_NOTE)
    cols = st.columns(4)
    cols[0].selectbox("Combination", ["linear", "cat", "svd", "ties", "dare_linear"], key="ad_combo")
    cols[1].number_input("weight w₁", -4.0, 4.0, step=0.05, key="ad_w1")
    cols[2].number_input("weight w₂", -4.0, 4.0, step=0.05, key="ad_w2")
    if cfg.combo in ("ties", "dare_linear"):
        cols[3].slider("density", 0.05, 1.0, step=0.05, key="ad_density")
    cols = st.columns(4)
    third_names = [""] + [n for n in names if n not in (cfg.first, cfg.second)]
    if cfg.third and cfg.third not in third_names:
        third_names.append(cfg.third)
    cols[0].selectbox("Third adapter (optional)", third_names, key="ad_third",
                      format_func=lambda n: compute.label(n) if n else "none: merge two")
    if cfg.third:
        cols[1].number_input("weight w₃", -4.0, 4.0, step=0.05, key="ad_w3")
    if cfg.combo == "dare_linear":
        cols[2].number_input("DARE's seed", 0, 2**31 - 1, step=1, key="ad_seed")
    if cfg.combo == "svd":
        cols[2].number_input("svd_rank (0: the largest r)", 0, 4096, step=1, key="ad_svd_rank")
    adapters, weights = [first.adapter, second.adapter], [cfg.w1, cfg.w2]
    if cfg.third:
        third = opened_or_reason(cfg.third, uploads, "ad_train_examples_3")
        if third is not None:
            adapters.append(third.adapter)
            weights.append(cfg.w3)
    shared = [n for n in adapters[0].infos if all(n in a.infos for a in adapters[1:])]
    if not shared:
        st.warning("The adapters share no module: merging them is only putting them side by side.",
                   icon=":material/warning:")
        return
    name = cfg.module if cfg.module in shared else shared[0]
    parts = [compute.module_factors(a, name) for a in adapters]
    try:
        res = compute.merge_module(parts, weights, cfg.combo, svd_rank=cfg.svd_rank, density=cfg.density,
                                   seed=cfg.seed)
    except ValueError as e:
        st.error(f"{e}.", icon=":material/error:")
        return
    st.markdown(f"For **{name}** ({len(adapters)} adapters): {cfg.combo} {text.HOW[cfg.combo]}.")
    diff = (res.merged - res.exact).numpy()
    exact = res.exact.numpy()
    rel = float(np.linalg.norm(diff) / max(np.linalg.norm(exact), 1e-300))
    st.markdown(text.merge_sentence(cfg.combo, rel, res.r))
    zmax = figures.symmetric_range(exact, res.merged.numpy())
    items = [(exact, "exact Σ wᵢ·ΔWᵢ", {"zmax": zmax}), (res.merged.numpy(), f"{cfg.combo}: A·B", {"zmax": zmax}),
             (diff, "difference", {"zmax": zmax})]
    if res.cross is not None:
        items.append((res.cross.numpy(), "linear's cross terms", {"zmax": zmax}))
    charts.matrix_row(items, "fig_ad_merge", cell_max=8)
    st.download_button("Download the merged adapter (PEFT folder, zipped)",
                       compute.merged_zip(adapters, weights, cfg.combo, svd_rank=cfg.svd_rank, density=cfg.density,
                                          seed=cfg.seed),
                       file_name=f"merged-{cfg.combo}.zip", mime="application/zip", icon=":material/download:",
                       on_click="ignore")
