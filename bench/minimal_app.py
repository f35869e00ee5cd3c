"""The baseline for bench/bench_browser.py: the least a Streamlit page with a slider and a heatmap can cost.

One st.slider and one 3×3 plotly heatmap whose values and title depend on it, its numbers written in
the cells with a texttemplate, as the explainer's heatmaps are. The figure is built from a plain dict
without plotly's validation, as the explainer builds its own (lora_app.figures.base.fast_figure), so
the baseline is the cheapest way Streamlit and plotly can do it.

``?charts=N`` (1…24) draws N such heatmaps, three to a row: a diagnostic for what each further figure
costs. Run it alone with ``streamlit run bench/minimal_app.py``.
"""
import numpy as np
import plotly.graph_objects as go
import streamlit as st


def heatmap(z: np.ndarray, title: str) -> go.Figure:
    trace = dict(type="heatmap", z=z, texttemplate="%{z:.1f}", colorscale="RdBu", zmin=0, zmax=30)
    return go.Figure(dict(data=[trace], layout=dict(title=dict(text=title), height=360)), _validate=False)


try:
    charts = min(max(int(st.query_params.get("charts", 1)), 1), 24)
except ValueError:
    charts = 1

v = st.slider("v", 1, 10, value=2, key="v")
B = np.arange(1, 10, dtype=float).reshape(3, 3) / 10
if charts == 1:
    st.plotly_chart(heatmap(v * B, f"M = v·B, v = {v} (3×3)"), key="fig")
else:
    cols = st.columns(3)
    for i in range(charts):
        cols[i % 3].plotly_chart(heatmap((v + i) * B, f"M{i + 1} = (v + {i})·B, v = {v} (3×3)"), key=f"fig{i}")
