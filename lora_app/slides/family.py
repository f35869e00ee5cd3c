"""The LoRA family's slides: QLoRA's 4-bit base, DoRA's length and direction, and which GPU each method needs."""
from __future__ import annotations

import streamlit as st

from lora_core.gpu import CARDS, METHOD_NAMES, METHODS, Workload, gigabytes, gpu_estimate
from lora_core.scale import MODELS

from .. import figures
from ..compute import family as family_compute
from ..config import ExploreConfig
from ..config.family import family_config
from ..text import present as text
from ..widgets import charts
from .layout import SlideSpace

GPU_MODEL, GPU_R = "llama-2-7b", 8  # the model of the "Why it matters" slide
NO_GPU_CHART = "The chart is on the Scale page, under Which GPU: this screen has no room for it under the words."


def qlora(ex: ExploreConfig, sp: SlideSpace) -> None:
    sp.markdown(text.QLORA)
    res = family_compute.qlora_view(family_config(ex, {}))
    z = figures.symmetric_range(res.W, res.W_tilde)
    blocks = int(res.absmax.size)
    bits = (f"**{res.bits:.4g} bits a weight** instead of 16, on {res.W.size:,} weights in {blocks:,} "
            f"block{'s' if blocks != 1 else ''} of up to 64.")
    sp.take(sp.text_height(bits))
    codes = {"zmax": 1.0, "labels": res.codes.astype(int)}
    sp.row([(res.W, "W_Q", {"role": "frozen", "zmax": z}), (res.levels, "4-bit code", codes),
            (res.W_tilde, "W̃_Q", {"role": "frozen", "zmax": z}), (res.error, "W_Q − W̃_Q", {})], "slide_qlora")
    st.markdown(bits)


def dora(ex: ExploreConfig, sp: SlideSpace) -> None:
    sp.markdown(text.DORA)
    res = family_compute.dora_view(family_config(ex, {}))
    sp.row([(res.V, "W_Q + s·A_Q·B_Q", {}), (res.direction, "direction", {"zmax": 1.0}),
            (res.m_start[None], "length m", {"role": "trainable"})], "slide_dora")


def gpu(ex: ExploreConfig, sp: SlideSpace) -> None:
    est = gpu_estimate(GPU_MODEL, ("q", "v"), GPU_R, Workload(512, 1, True))
    fits = {m: [c.name for c in CARDS if est.methods[m].total <= c.memory] for m in METHODS}
    def where(m: str) -> str:
        if not fits[m]:
            return "more than any single card here holds"
        return f"the smallest card here that holds it is the {fits[m][0].split(' (')[0]}"
    sentence = "; ".join(f"{METHOD_NAMES[m]} needs **{gigabytes(est.methods[m].total):,.1f} GB**, {where(m)}"
                         for m in METHODS) + "."
    sp.markdown(text.GPU.format(model=MODELS[GPU_MODEL].name, r=GPU_R, sentence=sentence))
    height = sp.chart_height(360)
    if height:
        charts.chart(st, figures.scale.gpu_totals({m: est.methods[m].total for m in METHODS}, METHOD_NAMES,
                                                  [(c.name, c.memory) for c in CARDS],
                                                  f"One training step of {MODELS[GPU_MODEL].name}", height=height,
                                                  scale=sp.scale, width=sp.width), key="slide_gpu")
    else:
        st.caption(NO_GPU_CHART)
